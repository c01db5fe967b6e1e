"""``GET /api/v1/reservations/{id}/``: the read a client polls until its checkout settles.

A purchase is read far more often than it is written (every 100 ms until it
settles, or once held by ``Prefer: wait=N``), so a token request takes the lean
path (``reservation_detail_view``), like ``POST /reservations/``: no DRF request
cycle, one SQL statement (``selectors.reservation_of``) and the token checked
through the cache (``core.api.lean``). Both paths build the answer in
``reservation_answer`` and render it as DRF would, so they answer the same bytes;
anything the lean path cannot answer exactly as DRF would (a browser session, no
credentials, content negotiation) goes through ``views.ReservationDetailView``.
"""

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse

from core.api.lean import answer_read, json_response
from reservations import selectors, waiting
from reservations.api.serializers import reservation_representation

# Accept headers DRF answers with plain ``application/json``. Any other value is
# negotiated by DRF: 406 for what it cannot render, an indent for ``indent=N``.
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


def takes_lean_path(request: HttpRequest) -> bool:
    return (
        request.method == "GET"
        and request.headers.get("Authorization", "").startswith("Token ")
        and request.headers.get("Accept", "").strip() in JSON_ACCEPTS
        # ``?format=`` picks DRF's renderer; nothing else is read from the query.
        and not request.META.get("QUERY_STRING")
    )


def reservation_detail_view(request: HttpRequest, reservation_id: uuid.UUID) -> HttpResponse:
    def read(player: AbstractBaseUser) -> HttpResponse:
        body, headers = reservation_answer(request, player, reservation_id)
        return json_response(body, headers=headers)

    return answer_read(request, read=read)


def reservation_answer(
    request: HttpRequest, player: AbstractBaseUser, reservation_id: uuid.UUID
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of a 200, for this path and DRF's alike."""
    wait = requested_wait(request)
    awaited = selectors.reservation_awaited(player, reservation_id, wait_seconds=wait)
    headers = {}
    if awaited.wait_applied:
        headers["Preference-Applied"] = f"wait={awaited.wait_applied}"
    return reservation_representation(awaited.reservation), headers


def requested_wait(request: HttpRequest) -> int:
    """Seconds asked for by ``Prefer: wait=N`` (0 when absent or malformed), capped.

    A held request holds a web thread: the server honours waits only up to
    ``RESERVATION_WAIT_MAX_SECONDS``, 0 (never) unless its web tier runs threads.
    """
    allowed = min(settings.RESERVATION_WAIT_MAX_SECONDS, waiting.MAX_WAIT_SECONDS)
    for preference in request.headers.get("Prefer", "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), allowed)
    return 0
