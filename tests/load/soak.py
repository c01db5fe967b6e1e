"""The soak of issue 11: ``fault_soak.py`` with the soak's defaults. A command, not a test.

    .venv/bin/python tests/load/soak.py --ref HEAD                 # 10 min, 50 players
    .venv/bin/python tests/load/soak.py --ref HEAD --duration 120  # a 2-minute try

10 minutes of mixed traffic (browse, house detail, reserve, check out, cancel,
abandon, replay, watchlist, draws reads) from 50 players against the real stack
(gunicorn, a Celery worker, Celery beat), with every fault of ``fault_soak.py``
(Redis restarted, the worker SIGKILLed, PostgreSQL connections terminated) and
the sandbox gateway failing 20 % of charge calls and timing out 5 % after
charging, all run long. Every option of ``fault_soak.py`` can be given; see
``docs/reliability.md``.
"""

import sys

from fault_soak import main  # the sibling script (its directory is on sys.path when run)

SOAK_DEFAULTS = {
    "duration": 600,
    "players": 50,
    "gateway_failure_percent": 20,
    "gateway_timeout_percent": 5,
    "redis_port": 6396,
    "port": 8096,
    "drain_timeout": 300,
}

if __name__ == "__main__":
    sys.exit(main(defaults=SOAK_DEFAULTS))
