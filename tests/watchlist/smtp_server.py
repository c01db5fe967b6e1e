"""A tiny SMTP server on 127.0.0.1 for tests (enough of RFC 5321 for Django's backend)."""

import socket
import socketserver
import threading
from typing import Any


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        envelope: dict[str, Any] = {"to": []}
        self.reply("220 localhost test SMTP")
        while True:
            line = self.rfile.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                envelope = {"from": line.partition(":")[2].strip("<> "), "to": []}
                self.reply("250 OK")
            elif verb == "RCPT":
                address = line.partition(":")[2].strip("<> ")
                if self.server.refusals.get(address, 0) > 0:  # type: ignore[attr-defined]
                    self.server.refusals[address] -= 1  # type: ignore[attr-defined]
                    self.reply("550 mailbox unavailable")
                    continue
                envelope["to"].append(address)
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline().decode(errors="replace")) not in (".\r\n", ""):
                    lines.append(data)
                envelope["data"] = "".join(lines)
                self.server.messages.append(envelope)  # type: ignore[attr-defined]
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("250 OK")


class SmtpServer:
    """``with SmtpServer() as server:`` serves on ``server.port``; ``server.messages``.

    ``refuse={address: n}``: the first ``n`` messages to ``address`` are refused (550).
    """

    def __init__(self, *, refuse: dict[str, int] | None = None) -> None:
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.messages = []  # type: ignore[attr-defined]
        self._server.refusals = dict(refuse or {})  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self._server.messages  # type: ignore[attr-defined]

    def __enter__(self) -> "SmtpServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
