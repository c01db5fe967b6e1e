"""gunicorn settings the command line does not carry (the Procfile passes ``--config`` here).

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics to that
directory; when a worker exits (restart, ``max_requests``, crash) its live
gauges are dropped while its counters keep counting in the total.
"""

import os


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from core.metrics import process_identifier

        multiprocess.mark_process_dead(process_identifier(worker.pid))
