"""The current request id, shared by the HTTP request, its logs and its tasks."""

import re
import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Accepted from clients: short and safe to log and echo (no spaces, no CR/LF).
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def get_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


def accept_or_generate(candidate: str | None) -> str:
    if candidate and VALID_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()
