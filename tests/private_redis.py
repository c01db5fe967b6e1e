"""A private redis-server a test can stop, so failures are real, not mocked.

Never stop the shared Redis on 6379; start one of these on a port of your own.
"""

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis on port {self.port} did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
