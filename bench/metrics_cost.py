"""What the metrics add to one reserve request, timed directly. A command, not a test.

    .venv/bin/python bench/metrics_cost.py                                   # in-process
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python bench/metrics_cost.py  # multiprocess

Times the calls one reserve request makes (the middleware's counter and
histogram with three labels, and ``reservations_created_total``) against an
empty call: best of 5 x 100,000.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from core import metrics  # noqa: E402

LABELS = {"method": "POST", "route": "api/v1/reservations/", "status": "201"}
CALLS = 100_000


def one_request() -> None:
    metrics.increment("http_requests_total", **LABELS)
    metrics.observe("http_request_duration_seconds", 0.004, **LABELS)
    metrics.increment("reservations_created_total")


def empty() -> None:
    pass


def best_microseconds(function: object) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(CALLS):
            function()
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


def main() -> None:
    one_request()  # create the series first
    added = best_microseconds(one_request) - best_microseconds(empty)
    mode = "multiprocess" if metrics.multiprocess_dir() else "in-process"
    print(f"{mode}: metrics add {added:.1f} us per reserve request (best of 5 x {CALLS:,})")


if __name__ == "__main__":
    main()
