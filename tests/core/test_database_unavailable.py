"""A lost database connection answers 503 with Retry-After, and the next request works.

The server is real (pytest-django's live server: its own thread, its own
persistent PostgreSQL connection). The request is caught mid-flight: another
connection holds a lock the request's query waits for, and the waiting backend
is terminated with ``pg_terminate_backend``, as a failover or an operator would.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.db import connections
from rest_framework.authtoken.models import Token

from core.errors import as_domain_error

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Hold an exclusive lock on ``table`` from another connection until the block ends."""
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


def terminate_backends_waiting_on_a_lock(timeout: float = 10.0) -> int:
    killer = connections.create_connection("default")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with killer.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    " AND pid <> pg_backend_pid()"
                )
                terminated = len(cursor.fetchall())
            if terminated:
                return terminated
            time.sleep(0.02)
        return 0
    finally:
        killer.close()


def request_in_background(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.update(response=call()))
    thread.start()

    def wait() -> httpx.Response:
        thread.join(timeout=30)
        return result["response"]

    return wait


def test_terminated_connection_mid_request_is_503_and_the_next_request_is_200(
    live_server, player
) -> None:
    token, _ = Token.objects.get_or_create(user=player)
    http = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Token {token.key}"}, timeout=30
    )
    assert http.get("/api/v1/reservations/").status_code == 200  # the server is connected

    with table_locked("reservations_reservation"):
        wait = request_in_background(lambda: http.get("/api/v1/reservations/"))
        assert terminate_backends_waiting_on_a_lock() == 1
    response = wait()

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert "terminat" not in body["detail"].lower()  # no driver text reaches the client
    assert http.get("/api/v1/reservations/").status_code == 200


def test_terminated_connection_in_the_admin_is_503_not_500(live_server, staff) -> None:
    http = httpx.Client(base_url=live_server.url, timeout=30)
    login = http.get("/admin/login/")
    http.post(
        "/admin/login/",
        data={
            "username": staff.username,
            "password": "correct horse battery staple",
            "csrfmiddlewaretoken": login.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{live_server.url}/admin/login/"},
    )
    page = "/admin/reservations/reservation/"
    assert http.get(page).status_code == 200

    with table_locked("reservations_reservation"):
        wait = request_in_background(lambda: http.get(page))
        assert terminate_backends_waiting_on_a_lock() == 1
    response = wait()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert http.get(page).status_code == 200


def test_every_database_connection_error_maps_to_service_unavailable() -> None:
    from django.db import InterfaceError, OperationalError

    for exc in (OperationalError("server closed the connection"), InterfaceError("closed")):
        error = as_domain_error(exc)
        assert (error.status_code, error.code) == (503, "service_unavailable")
        assert error.headers["Retry-After"] == "5"
