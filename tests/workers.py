"""A real Celery worker process (prefork pool) reading the test database.

The worker is a separate process, so tests that use it commit
(``transaction=True``) and pass the test database's name to the worker in
``DATABASE_URL``.
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from config.celery import app as celery_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunningWorker:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def unfinished_tasks(self) -> set[str]:
        """Ids of the tasks this worker received and has not finished (by its log)."""
        log = self.log()
        received = set(_RECEIVED.findall(log))
        return received - set(_FINISHED.findall(log))

    def wait_until_idle(self, quiet: float = 1.0, timeout: float = 30) -> None:
        """Wait until every task received has finished and none arrived for ``quiet`` s.

        A task may queue another as it ends (relay, notification batch), so
        idle means finished *and* quiet, not just an empty in-flight set.
        """
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            if self.unfinished_tasks():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return
            time.sleep(0.1)
        raise AssertionError(f"worker still busy with {self.unfinished_tasks()}")


_RECEIVED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
_FINISHED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|retry|failed)")


def worker_database_url(settings: object) -> str:
    db = settings.DATABASES["default"]
    credentials = db["USER"] + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def celery_worker(
    settings: object, *, redis_url: str | None = None, name: str = "worker"
) -> Iterator[RunningWorker]:
    """Start a worker on ``redis_url`` (broker and cache; default the test Redis) and stop it.

    While it runs, tasks published by the test process go to the broker
    instead of running eagerly.
    """
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(settings),  # the test database (test_...)
        "REDIS_URL": redis_url or settings.REDIS_URL,
        "CELERY_BROKER_URL": redis_url or settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "FAILPOINTS_ENABLED": "1",
        "LOG_LEVEL": "INFO",
    }
    log_path = Path(settings.BASE_DIR) / f".{name}-{os.getpid()}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    celery_app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.2)
        yield RunningWorker(process=process, log_path=log_path)
    finally:
        celery_app.conf.task_always_eager = True
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        log_path.unlink(missing_ok=True)
