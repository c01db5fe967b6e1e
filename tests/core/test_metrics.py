"""/metrics on prometheus-client: what it exports, across processes, and who may read it."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app as celery_app
from core import metrics
from core.breaker import CircuitBreaker
from core.models import OutboxEvent

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def scrape(client) -> dict[str, float]:
    """The /metrics body as {series: value}, series written as ``metrics.series_name`` does."""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[metrics.series_name(sample.name, sample.labels)] = sample.value
    return values


@pytest.mark.django_db
def test_counters_gauges_and_histograms_are_rendered_for_prometheus(client):
    before = scrape(client)
    metrics.increment("inventory_fallback_total", reason="timeout")
    metrics.increment("inventory_fallback_total", reason="timeout")
    metrics.set_gauge("inventory_drift_tickets", 3, house="7")
    metrics.observe("checkout_duration_seconds", 0.3, outcome="completed")
    after = scrape(client)
    fallbacks = 'inventory_fallback_total{reason="timeout"}'
    assert after[fallbacks] - before.get(fallbacks, 0) == 2
    assert after['inventory_drift_tickets{house="7"}'] == 3
    count = 'checkout_duration_seconds_count{outcome="completed"}'
    assert after[count] - before.get(count, 0) == 1
    bucket = 'checkout_duration_seconds_bucket{le="0.5",outcome="completed"}'
    assert after[bucket] - before.get(bucket, 0) == 1


@pytest.mark.django_db
def test_every_declared_metric_is_listed_before_its_first_use(client):
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    exported = {family.name for family in text_string_to_metric_families(text)}
    for name, spec in metrics.DECLARED.items():
        family = name.removesuffix("_total") if spec.kind == "counter" else name
        assert family in exported, name
    assert set(metrics.SCRAPE_TIME_GAUGES) <= exported


@pytest.mark.django_db
def test_requests_are_counted_by_route_not_by_raw_path(client, make_house):
    houses = [make_house(), make_house()]
    route = 'http_requests_total{method="GET",route="api/v1/houses/<int:house_id>/",status="200"}'
    missing = 'http_requests_total{method="GET",route="<unmatched>",status="404"}'
    before = scrape(client)
    for house in houses:
        assert client.get(f"/api/v1/houses/{house.pk}/").status_code == 200
    client.get("/no/such/page/")
    after = scrape(client)
    assert after[route] - before.get(route, 0) == 2
    assert after[missing] - before.get(missing, 0) == 1
    assert not any(f"/houses/{houses[0].pk}/" in series for series in after)
    latency = route.replace("http_requests_total", "http_request_duration_seconds_count")
    assert after[latency] - before.get(latency, 0) == 2


@pytest.mark.django_db
def test_reservations_and_sold_out_answers_are_counted(client, player_client, make_house):
    house = make_house(total_tickets=1)

    def reserve() -> int:
        return player_client.post(
            "/api/v1/reservations/",
            {"house_id": house.pk, "quantity": 1},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        ).status_code

    def sold_out(values: dict[str, float]) -> float:
        return sum(v for k, v in values.items() if k.startswith("sold_out_answers_total"))

    before = scrape(client)
    assert reserve() == 201
    assert reserve() == 409
    after = scrape(client)
    created = "reservations_created_total"
    assert after[created] - before.get(created, 0) == 1
    assert sold_out(after) - sold_out(before) == 1


@pytest.mark.django_db
def test_outbox_backlog_and_oldest_age_are_read_at_scrape_time(client):
    OutboxEvent.objects.create(
        event_type="test.waiting", created_at=timezone.now() - timedelta(minutes=3)
    )
    OutboxEvent.objects.create(event_type="test.delivered", delivered_at=timezone.now())
    values = scrape(client)
    assert values["outbox_backlog_events"] >= 1
    assert values["outbox_oldest_event_age_seconds"] >= 180


def test_breaker_state_is_a_gauge_set_on_each_change():
    clock = [0.0]
    breaker = CircuitBreaker(
        failures_to_open=2, open_seconds=5, clock=lambda: clock[0], name="test_dependency"
    )
    series = 'circuit_breaker_open{dependency="test_dependency"}'
    assert metrics.snapshot()[1][series] == 0
    breaker.record_failure()
    assert metrics.snapshot()[1][series] == 0
    breaker.record_failure()
    assert metrics.snapshot()[1][series] == 1
    breaker.record_success()
    assert metrics.snapshot()[1][series] == 0


@celery_app.task(name="tests.metrics_probe", bind=True, max_retries=1)
def _probe(self, mode: str) -> str:
    if mode == "fail":
        raise ValueError("probe failed")
    if mode == "retry" and self.request.retries == 0:
        raise self.retry(countdown=0)
    return mode


def test_celery_task_runs_failures_retries_and_runtime_are_counted():
    def counters() -> dict[str, float]:
        return metrics.snapshot()[0]

    task = 'task="tests.metrics_probe"'
    before = counters()
    _probe.apply(args=["ok"])
    _probe.apply(args=["fail"], throw=False)  # as in a worker: the failure is recorded
    with pytest.raises(ValueError):
        _probe.apply(args=["fail"])  # eager, re-raised to the caller
    _probe.apply(args=["retry"], throw=False)
    after = counters()

    def grew(series: str) -> float:
        return after.get(series, 0) - before.get(series, 0)

    assert grew(f'celery_tasks_total{{state="SUCCESS",{task}}}') == 2  # ok, and the retried run
    assert grew(f'celery_tasks_total{{state="FAILURE",{task}}}') == 2
    assert grew(f"celery_task_failures_total{{{task}}}") == 2
    assert grew(f"celery_task_retries_total{{{task}}}") == 1
    assert grew(f"celery_task_runtime_seconds_count{{{task}}}") == 5


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert right.status_code == 200
    assert b"reservations_created_total" in right.content


@pytest.mark.django_db
def test_metrics_without_token_only_answer_loopback(client):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_a_metric_with_the_wrong_labels_is_dropped_not_raised(caplog):
    metrics.increment("reservations_created_total", house="1")  # declared without labels
    assert "not recorded" in caplog.text


# ---- multiprocess mode: real processes sharing PROMETHEUS_MULTIPROC_DIR ------------

WRITER = textwrap.dedent(
    """
    import os, sys, django
    django.setup()
    from core import metrics
    from core.breaker import CircuitBreaker
    amount, drift = int(sys.argv[1]), int(sys.argv[2])
    metrics.increment("reservations_created_total", amount)
    metrics.increment("sold_out_answers_total", amount, path="redis")
    metrics.observe("celery_task_runtime_seconds", 0.2, task="probe")
    metrics.set_gauge("inventory_drift_tickets", drift, house="1")
    breaker = CircuitBreaker(failures_to_open=1, open_seconds=60, name="probe_" + sys.argv[1])
    breaker.record_failure()
    print(os.getpid())
    """
)

SCRAPER = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from django.test import Client
    from core.observability import mark_process_dead
    mark_process_dead(int(sys.argv[1]))  # as gunicorn's child_exit does for a gone worker
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST="localhost")
    assert response.status_code == 200, response.status_code
    sys.stdout.write(response.content.decode())
    """
)


def _run(script: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.django_db(transaction=True)
def test_multiprocess_mode_adds_up_every_process(tmp_path):
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "METRICS_TOKEN": "",
    }
    first = int(_run(WRITER, "2", "4", env=env))
    _run(WRITER, "3", "7", env=env)
    # Files are named by host and pid, so containers sharing the directory never collide.
    assert (tmp_path / f"counter_{metrics.process_identifier(first)}.db").exists()

    text = _run(SCRAPER, str(first), env=env)
    values = {
        metrics.series_name(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values["reservations_created_total"] == 5
    assert values['sold_out_answers_total{path="redis"}'] == 5
    assert values['celery_task_runtime_seconds_count{task="probe"}'] == 2
    assert values['inventory_drift_tickets{house="1"}'] == 7  # the most recent write wins
    # A live gauge of a process marked dead is gone; the other writer's stays.
    assert 'circuit_breaker_open{dependency="probe_2"}' not in values
    assert values['circuit_breaker_open{dependency="probe_3"}'] == 1
    assert "outbox_backlog_events" in values  # the database gauges answer in this mode too
    json.dumps(values)  # plain numbers only


def _load(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stack_empties_the_metrics_directory_before_starting(tmp_path):
    stack = _load(PROJECT_ROOT / "scripts" / "stack.py", "stack_under_test")
    (tmp_path / "counter_vm-123.db").write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("not ours")
    stack.reset_metrics_dir(tmp_path / "prometheus")  # created when missing
    stack.reset_metrics_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "prometheus"]


def test_gunicorn_drops_the_live_gauges_of_an_exited_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = _load(PROJECT_ROOT / "config" / "gunicorn.conf.py", "gunicorn_conf_under_test")
    gone, alive = metrics.process_identifier(111), metrics.process_identifier(222)
    for name in (f"gauge_livemax_{gone}.db", f"gauge_livemax_{alive}.db", f"counter_{gone}.db"):
        (tmp_path / name).write_bytes(b"")

    conf.child_exit(server=None, worker=types.SimpleNamespace(pid=111))

    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f"counter_{gone}.db", f"gauge_livemax_{alive}.db"]  # its counts still count
