"""The HTTP request id travels in the task message and into a real worker's logs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.celery import app as celery_app
from config.urls import urlpatterns as real_urlpatterns
from core.tasks import purge_expired_idempotency_keys

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def enqueue_purge(request: HttpRequest) -> JsonResponse:
    purge_expired_idempotency_keys.delay()
    return JsonResponse({"queued": True})


urlpatterns = [path("_test/enqueue/", enqueue_purge), *real_urlpatterns]


@pytest.fixture
def real_worker(settings):
    """A Celery worker process on the Redis broker, logging JSON to a file."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    log_path = Path(settings.BASE_DIR) / f".worker-{os.getpid()}.log"
    log_file = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "INFO"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    celery_app.conf.task_always_eager = False
    try:
        yield log_path
    finally:
        celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        worker.terminate()
        worker.wait(timeout=20)
        log_file.close()
        log_path.unlink(missing_ok=True)


def _json_lines(log_path: Path) -> list[dict]:
    lines = []
    for raw in log_path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_request_id_reaches_the_task_log_in_a_real_worker(client, settings, real_worker):
    settings.ROOT_URLCONF = __name__
    response = client.get("/_test/enqueue/", HTTP_X_REQUEST_ID="trace-into-task-7")
    assert response.status_code == 200

    deadline = time.monotonic() + 30
    task_lines: list[dict] = []
    while time.monotonic() < deadline and not task_lines:
        task_lines = [
            line
            for line in _json_lines(real_worker)
            if line.get("message", "").startswith("purged ")
        ]
        time.sleep(0.2)
    assert task_lines, real_worker.read_text()[-3000:]
    assert task_lines[0]["request_id"] == "trace-into-task-7"
