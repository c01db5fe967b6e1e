"""Every field of the reserve body fuzzed: a 4xx problem JSON, never a 500."""

import json
import uuid

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

MISSING = object()
URL = "/api/v1/reservations/"

bad_integers = st.one_of(
    st.sampled_from([0, -1, -(2**63), 2**63, 2**64, 10**100, 2**63 - 1, 1_000_001]),
    st.integers(max_value=0),
    st.integers(min_value=2**63),
)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
bad_codes = st.one_of(
    st.text(min_size=41, max_size=60),
    st.text(alphabet="!@#$%^&*() \u00e9\u4e2d", min_size=1, max_size=10),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)


def field(
    valid: st.SearchStrategy, bad: st.SearchStrategy, *, nullable: bool = False
) -> st.SearchStrategy:
    # For an optional field null and "" mean "absent", so they are not wrong types there.
    wrong = wrong_types.filter(lambda v: not (nullable and v in (None, "")))
    return st.one_of(
        valid.map(lambda v: ("ok", v)),
        bad.map(lambda v: ("bad", v)),
        wrong.map(lambda v: ("bad", v)),
        st.just(("missing", MISSING)),
    )


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    house_id=field(st.just("HOUSE"), bad_integers),
    quantity=field(st.integers(min_value=1, max_value=10), bad_integers),
    promo_code=field(st.sampled_from([None, "", "NOSUCHCODE"]), bad_codes, nullable=True),
)
def test_reserve_body_fuzz_never_500(player_client, make_house, house_id, quantity, promo_code):
    house = make_house(total_tickets=1_000_000)
    body = {}
    verdicts = []
    for name, (verdict, value) in (
        ("house_id", house_id),
        ("quantity", quantity),
        ("promo_code", promo_code),
    ):
        if value is MISSING:
            verdicts.append("ok" if name == "promo_code" else "bad")
            continue
        body[name] = house.pk if value == "HOUSE" and name == "house_id" else value
        verdicts.append(verdict)
    response = player_client.generic(
        "POST",
        URL,
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code != 500
    if "bad" in verdicts:
        assert 400 <= response.status_code < 500, (body, response.content)
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code and problem["code"]
    else:
        assert response.status_code == 201


@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_reserve_raw_bytes_never_500(player_client, db, raw):
    response = player_client.generic(
        "POST", URL, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="fuzz"
    )
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/problem+json"
