"""gunicorn settings the command line does not carry (the Procfile passes ``--config`` here).

Set the threads with ``WEB_THREADS``, not ``--threads``: the wait setting follows it.

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics to that
directory; when a worker exits (restart, ``max_requests``, crash) its live
gauges are dropped while its counters keep counting in the total.
"""

import os

# Threads per worker (gthread when > 1): a GET held by ``Prefer: wait=N`` waits in a
# thread instead of holding a whole worker, so with threads the waits are honoured
# (up to 5 s unless RESERVATION_WAIT_MAX_SECONDS says otherwise). A buyer then asks once
# for the outcome instead of every 100 ms: 80+ purchases/s against ~65 polling on two
# cores (docs/benchmarks.md, issue 12).
threads = int(os.environ.get("WEB_THREADS", "8"))
if threads > 1:
    os.environ.setdefault("RESERVATION_WAIT_MAX_SECONDS", "5")


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from core.metrics import process_identifier

        multiprocess.mark_process_dead(process_identifier(worker.pid))
