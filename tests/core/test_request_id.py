import logging

import pytest


@pytest.mark.django_db
def test_client_request_id_is_echoed(client):
    response = client.get("/health/live/", HTTP_X_REQUEST_ID="abc-123.req")
    assert response["X-Request-ID"] == "abc-123.req"


@pytest.mark.django_db
@pytest.mark.parametrize("unsafe", ["has space", "x" * 65, "new\nline", "<script>"])
def test_unsafe_request_id_is_replaced_by_a_generated_one(client, unsafe):
    response = client.get("/health/live/", HTTP_X_REQUEST_ID=unsafe)
    echoed = response["X-Request-ID"]
    assert echoed != unsafe
    assert len(echoed) == 32 and echoed.isalnum()


@pytest.mark.django_db
def test_generated_request_ids_differ(client):
    first = client.get("/health/live/")["X-Request-ID"]
    second = client.get("/health/live/")["X-Request-ID"]
    assert first != second


def test_json_log_format_includes_request_id():
    from core.logging import JsonFormatter, RequestIdFilter
    from core.request_context import bind_request_id

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    bind_request_id("json-id-1")
    try:
        RequestIdFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        bind_request_id(None)
    import json

    parsed = json.loads(line)
    assert parsed["request_id"] == "json-id-1"
    assert parsed["message"] == "hello world"
