"""The environment of ``make run``'s embedded mode, for tests that start it in a subprocess."""

import os
from pathlib import Path

# What the real stack sets and the embedded mode does without: DEBUG on, SQLite, no Redis.
REAL_STACK_VARIABLES = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in REAL_STACK_VARIABLES}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    return env
