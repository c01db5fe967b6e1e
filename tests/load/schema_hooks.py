"""Schemathesis hooks for the schema-conformance runs (``tests/load/schema_fuzz.py``).

A client author sends a fresh ``Idempotency-Key`` with every new request; schemathesis
draws keys from the schema and so repeats a few with another body, which the API rightly
refuses (422 ``idempotency_key_reused``). Every well-formed key is replaced by a unique one;
malformed keys (the negative cases) are sent as drawn.
"""

import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
WELL_FORMED = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if (
            name.lower() == HEADER.lower()
            and isinstance(value, str)
            and WELL_FORMED.fullmatch(value)
        ):
            headers[name] = f"st-{uuid.uuid4().hex}"
