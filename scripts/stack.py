"""Run the Procfile's processes under supervisord, which restarts any that dies.

``make stack`` calls this after migrating. The Procfile stays the one place
that names the commands; this writes a supervisord configuration for them in
a temporary directory and runs supervisord in the foreground (``nodaemon``):
every process's output goes to this terminal, a process that exits or is
killed is started again (``autorestart``), and Ctrl-C stops them all.

While it runs: ``.venv/bin/supervisorctl -c <printed config> status``.
"""

import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROCFILE_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>.+)$")


def read_procfile(path: Path) -> dict[str, str]:
    processes = {}
    for line in path.read_text().splitlines():
        match = PROCFILE_LINE.match(line.strip())
        if match:
            processes[match["name"]] = match["command"]
    return processes


def supervisord_config(processes: dict[str, str], run_dir: Path) -> str:
    sections = [
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/null",  # nodaemon already echoes its log to this terminal
        "logfile_maxbytes=0",
        f"pidfile={run_dir / 'supervisord.pid'}",
        f"directory={PROJECT_ROOT}",
        "",
        "[unix_http_server]",
        f"file={run_dir / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run_dir / 'supervisor.sock'}",
    ]
    for name, command in processes.items():
        # bash expands the Procfile's ${VAR:-default}; exec keeps the real pid under watch.
        shell_command = shlex.quote(f"exec {command}").replace("%", "%%")
        sections += [
            "",
            f"[program:{name}]",
            f"command=/bin/bash -c {shell_command}",
            f"directory={PROJECT_ROOT}",
            "autostart=true",
            "autorestart=true",
            "startsecs=2",
            "startretries=10",
            "stopsignal=TERM",
            "stopwaitsecs=30",
            # SIGTERM to the Celery worker's main process only: its warm shutdown lets the
            # pool finish the current tasks (a pool process's SIGTERM kills it mid-task);
            # after stopwaitsecs SIGKILL goes to the whole group.
            f"stopasgroup={'false' if name == 'worker' else 'true'}",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
        ]
    return "\n".join(sections) + "\n"


def reset_metrics_dir(path: Path) -> None:
    """Empty prometheus-client's multiprocess directory before any process starts.

    Values left by a previous run would be added to this one's.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def main() -> None:
    processes = read_procfile(PROJECT_ROOT / "Procfile")
    run_dir = Path(tempfile.mkdtemp(prefix="raffle-stack-"))
    # Every process (gunicorn workers, Celery pool, beat) writes metrics here; /metrics adds them.
    metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or run_dir / "prometheus")
    reset_metrics_dir(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    config = run_dir / "supervisord.conf"
    config.write_text(supervisord_config(processes, run_dir))
    print(f"supervisord: {', '.join(processes)}; config {config}", flush=True)
    print(f"metrics (PROMETHEUS_MULTIPROC_DIR): {metrics_dir}", flush=True)
    supervisord = str(PROJECT_ROOT / ".venv" / "bin" / "supervisord")
    os.execv(supervisord, [supervisord, "-c", str(config)])  # noqa: S606 (fixed argv)


if __name__ == "__main__":
    sys.exit(main())
