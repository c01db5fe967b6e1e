"""A small asyncio HTTP/1.1 client for the benchmarks: cheap per request, stdlib only.

The load generators share this machine's two cores with the system they
measure, so every millisecond of client CPU is taken from the server. httpx in
one thread per simulated client cost about 11 ms of CPU per purchase; this
client runs every simulated client in one event loop over asyncio streams, one
connection each (``Connection``), and ``ClientProcess`` runs that loop in a
child process so its CPU shows up apart from the rest (``/proc/<pid>/stat``).

What it speaks: a request line, headers and an optional JSON body; the answer's
status line, headers and a ``Content-Length``, chunked or read-to-close body.
Keep-alive is the default; gunicorn's sync workers answer ``Connection: close``
and close after every response, so the connection is then dropped and opened
again for the next request (and a reused connection the server closed while it
sat idle is re-opened and the request sent once more).

    .venv/bin/python bench/http_client.py http://127.0.0.1:8161/api/v1/me/ \\
        -H "Authorization: Token <key>" --clients 32 --seconds 10 [--httpx]

prints requests/s and this process's CPU per request, with this client or
(``--httpx``) with httpx in one thread per client as the benchmarks used to.
"""

from __future__ import annotations

import argparse
import asyncio
import json as jsonlib
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def status_code(self) -> int:
        return self.status

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise HTTPStatusError(self.status, self.body)


class HTTPStatusError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


class Connection:
    """One simulated client: one connection to one server, opened again whenever it was closed.

    Header names in ``Response.headers`` are lower-case; of a repeated header the last wins.
    """

    def __init__(
        self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 30
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// is supported: {base_url}")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        fixed = {"Host": parts.netloc, "Accept": "*/*", **(headers or {})}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0  # how many times a connection was opened

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request("POST", path, json=json, headers=headers)

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if headers:
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if json is None:
            body = b""
            head += "Content-Length: 0\r\n\r\n" if method in ("POST", "PUT", "PATCH") else "\r\n"
        else:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        message = head.encode("latin-1") + body
        async with asyncio.timeout(self.timeout):
            while True:
                reused = self._writer is not None
                if not reused:
                    await self._connect()
                try:
                    return await self._exchange(method, message)
                except (ConnectionError, asyncio.IncompleteReadError) as error:
                    self.close()
                    # The server closed a connection that sat idle before it saw this
                    # request: send it once more on a new one. Anything else is an error.
                    if reused and _nothing_read(error):
                        continue
                    raise

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.connects += 1

    async def _exchange(self, method: str, message: bytes) -> Response:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(message)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, status = lines[0][:8], int(lines[0][9:12])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:  # no length: the body ends when the server closes the connection
            body, keep_alive = await reader.read(), False
        if not keep_alive:
            self.close()
        return Response(status, headers, body)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _nothing_read(error: Exception) -> bool:
    return not isinstance(error, asyncio.IncompleteReadError) or not error.partial


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children) from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ClientProcess:
    """A child process that runs the simulated clients' event loop when asked.

    A process rather than a thread in the bench: its CPU is its own (``pid``), and
    it shares no GIL with the bench's Django queries and sampling. ``spawn``, not
    ``fork``: the bench has Django, database connections and threads by then.
    ``run(function, *args)`` runs ``asyncio.run(function(*args))`` there and
    returns its (picklable) result; ``function`` must be importable by name.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self.process.start()
        self.pid: int = self.process.pid  # type: ignore[assignment]

    def run(self, function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        self._pipe.send((function, args))
        succeeded, value = self._pipe.recv()
        if not succeeded:
            raise RuntimeError(f"the client process failed:\n{value}")
        return value

    def close(self) -> None:
        if self.process.is_alive():
            self._pipe.send(None)
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _serve(pipe: Any) -> None:
    while (job := pipe.recv()) is not None:
        function, args = job
        try:
            pipe.send((True, asyncio.run(function(*args))))
        except BaseException:  # reported to the bench, which raises it
            pipe.send((False, traceback.format_exc()))


async def _hammer_async(url: str, headers: dict[str, str], clients: int, seconds: float) -> int:
    parts = urlsplit(url)
    stop_at = time.monotonic() + seconds
    counts = [0]

    async def one() -> None:
        http = Connection(f"{parts.scheme}://{parts.netloc}", headers)
        while time.monotonic() < stop_at:
            (await http.get(parts.path)).raise_for_status()
            counts[0] += 1
        http.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return counts[0]


def _hammer_httpx(url: str, headers: dict[str, str], clients: int, seconds: float) -> int:
    import httpx

    stop_at = time.monotonic() + seconds
    counts = [0] * clients

    def one(index: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.monotonic() < stop_at:
                http.get(url).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description="GET one URL with C clients: rate and CPU cost")
    parser.add_argument("url")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--httpx", action="store_true", help="httpx, one thread per client")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    cpu, wall = time.process_time(), time.monotonic()
    if args.httpx:
        requests = _hammer_httpx(args.url, headers, args.clients, args.seconds)
    else:
        requests = asyncio.run(_hammer_async(args.url, headers, args.clients, args.seconds))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    print(
        f"{'httpx threads' if args.httpx else 'asyncio'}: {requests} requests, "
        f"{requests / wall:.0f}/s, client CPU {cpu * 1000 / requests:.3f} ms per request "
        f"({cpu / wall * 100:.0f}% of a core)"
    )


if __name__ == "__main__":
    main()
