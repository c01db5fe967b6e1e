"""A private redis-server a test can stop, so failures are real, not mocked.

Never stop the shared Redis on 6379; start one of these on a port of your own.
"""

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


@contextmanager
def private_redis(port: int) -> Iterator["PrivateRedis"]:
    server = PrivateRedis(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivateRedis:
    """``data_dir`` given: an append-only file there keeps the data across a restart."""

    def __init__(self, port: int, *, data_dir: Path | None = None):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # Another server on the port would answer for ours, and stopping ours would stop nothing.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} is taken: a private redis needs a free one")
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
            if self.data_dir
            else ["--appendonly", "no"]
        )
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            [*command, *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.ResponseError):  # not up, or LOADING its file
                time.sleep(0.05)
        raise RuntimeError(f"private redis on port {self.port} did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
