import pytest

from core import metrics
from tests.private_redis import private_redis


@pytest.mark.django_db
def test_counters_and_gauges_are_rendered_for_prometheus(client):
    metrics.increment("inventory_fallback_total", reason="timeout")
    metrics.increment("inventory_fallback_total", reason="timeout")
    metrics.set_gauge("inventory_drift_tickets", 3, house="7")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    text = response.content.decode()
    assert "# TYPE inventory_fallback_total counter" in text
    assert 'inventory_fallback_total{reason="timeout"} 2' in text
    assert 'inventory_drift_tickets{house="7"} 3' in text


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert right.status_code == 200


@pytest.mark.django_db
def test_metrics_without_token_only_answer_loopback(client):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


@pytest.mark.django_db
def test_counting_survives_a_stopped_redis(settings):
    with private_redis(6388) as server:
        settings.REDIS_URL = server.url
        metrics.increment("work_done_total")
        server.stop()
        metrics.increment("work_done_total")  # must not raise
        counters, _ = metrics.snapshot()
    # The second count is kept in this process; Redis is skipped for a while.
    assert counters["work_done_total"] >= 1
    assert metrics._local_counters["work_done_total"] >= 1
    metrics._redis_down_until = 0.0
