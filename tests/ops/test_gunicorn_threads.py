"""The deployment's gunicorn runs threads and, with them, honours ``Prefer: wait``."""

import importlib.util
import os
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"


def load_conf() -> object:
    spec = importlib.util.spec_from_file_location("gunicorn_conf_threads", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clean_env(monkeypatch):
    # setenv first, so that the teardown restores whatever was there (nothing) afterwards.
    for name in ("WEB_THREADS", "RESERVATION_WAIT_MAX_SECONDS"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    return monkeypatch


def test_threads_by_default_and_waits_honoured_up_to_five_seconds(clean_env) -> None:
    assert load_conf().threads == 8
    assert os.environ["RESERVATION_WAIT_MAX_SECONDS"] == "5"


def test_sync_workers_never_hold_a_request(clean_env) -> None:
    clean_env.setenv("WEB_THREADS", "1")
    assert load_conf().threads == 1
    assert "RESERVATION_WAIT_MAX_SECONDS" not in os.environ


def test_an_operator_s_wait_setting_wins(clean_env) -> None:
    clean_env.setenv("RESERVATION_WAIT_MAX_SECONDS", "2")
    clean_env.setenv("WEB_THREADS", "4")
    assert load_conf().threads == 4
    assert os.environ["RESERVATION_WAIT_MAX_SECONDS"] == "2"
