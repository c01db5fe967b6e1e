"""Loaded as a pytest plugin (``-p tests.real_stack``) before Django's settings.

Tests run against the real stack: PostgreSQL and Redis on localhost unless the
environment says otherwise. Tasks run eagerly unless a test starts a worker.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/raffle")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Tests never reach the network: draws use staff entropy unless a test serves drand locally.
os.environ.setdefault("DRAW_ENTROPY_SOURCE", "manual")
os.environ.setdefault("DRAW_BEACON_URLS", "http://127.0.0.1:9")
