"""drand HTTP client: fetch one fixed round from the relays and verify it before use.

``GET {relay}/{chain_hash}/public/{round}`` answers
``{"round": R, "randomness": "<hex>", "signature": "<hex>"}`` once the round is
published; before that relays answer 404 (older) or 425 Too Early (newer), or hold
the request until it is. A body is returned only after its BLS signature verifies
for exactly the asked round (draws.verify), so a relay can delay a draw but never
choose its randomness.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from draws.verify import QUICKNET, Chain, beacon_randomness, verify_beacon_signature

logger = logging.getLogger(__name__)

_NOT_YET = frozenset({404, 425})
_MAX_BACKOFF_SECONDS = 30.0


class BeaconError(Exception):
    """The beacon round could not be used."""


class BeaconUnavailable(BeaconError):
    """No relay served the round: network error, timeout, or not published yet. Retry later."""


class BeaconInvalid(BeaconError):
    """A relay served a body that is not a valid beacon of the asked round."""


def round_url(relay_url: str, round_number: int, chain: Chain = QUICKNET) -> str:
    return f"{relay_url.rstrip('/')}/{chain.hash}/public/{round_number}"


def _signature_from(response: httpx.Response, round_number: int, chain: Chain) -> str:
    """The verified signature hex of the body, or BeaconInvalid saying what is wrong."""
    try:
        body = response.json()
    except ValueError:
        raise BeaconInvalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BeaconInvalid("the body is not a JSON object")
    if body.get("round") != round_number:
        raise BeaconInvalid(f"asked for round {round_number}, got {body.get('round')!r}")
    signature = body.get("signature")
    if not isinstance(signature, str):
        raise BeaconInvalid("the body has no signature")
    signature = signature.lower()
    if not verify_beacon_signature(round_number, signature, chain):
        raise BeaconInvalid(f"the signature of round {round_number} does not verify")
    randomness = body.get("randomness")
    if randomness is not None and str(randomness).lower() != beacon_randomness(signature):
        raise BeaconInvalid("randomness is not SHA-256 of the signature")
    return signature


def fetch_round(
    round_number: int,
    *,
    urls: list[str],
    timeout: float,
    attempts: int,
    chain: Chain = QUICKNET,
    backoff_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The verified signature hex of ``round_number``, trying each relay, ``attempts`` passes.

    Between passes it waits ``backoff_seconds * 2**pass`` (capped). A relay that served an
    invalid body is not asked again. Raises BeaconInvalid when every relay served an
    invalid body, BeaconUnavailable otherwise (a relay that was down may still answer).
    """
    if not urls:
        raise BeaconUnavailable("no beacon relay is configured")
    problems: dict[str, str] = {}
    invalid: dict[str, BeaconInvalid] = {}
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for attempt in range(max(1, attempts)):
            if attempt:
                sleep(min(backoff_seconds * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS))
            for relay in urls:
                if relay in invalid:
                    continue
                try:
                    response = client.get(round_url(relay, round_number, chain))
                except httpx.TimeoutException:
                    problems[relay] = "timed out"
                    continue
                except httpx.HTTPError as exc:
                    problems[relay] = f"network error ({type(exc).__name__})"
                    continue
                if response.status_code in _NOT_YET:
                    problems[relay] = f"round not published yet ({response.status_code})"
                    continue
                if response.status_code != 200:
                    problems[relay] = f"HTTP {response.status_code}"
                    continue
                try:
                    return _signature_from(response, round_number, chain)
                except BeaconInvalid as exc:
                    logger.warning("drand relay %s served an invalid round: %s", relay, exc)
                    invalid[relay] = exc
                    problems[relay] = str(exc)
            if invalid.keys() >= set(urls):
                break
    summary = "; ".join(f"{relay}: {problem}" for relay, problem in problems.items())
    if invalid.keys() >= set(urls):
        raise BeaconInvalid(f"round {round_number}: {summary}")
    raise BeaconUnavailable(f"round {round_number}: {summary}")
