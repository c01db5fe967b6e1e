"""The beacon round fixed at close: the first round whose time is at or after a moment."""

import pytest

from draws.verify import QUICKNET, Chain, round_at_or_after

GENESIS = QUICKNET.genesis_time


def round_time(round_number: int) -> int:
    return GENESIS + (round_number - 1) * QUICKNET.period


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (GENESIS - 1000, 1),
        (GENESIS, 1),
        (GENESIS + 0.001, 2),
        (GENESIS + 2.999, 2),
        (GENESIS + 3, 2),
        (GENESIS + 3.001, 3),
        (round_time(30662982), 30662982),
        (round_time(30662982) - 0.5, 30662982),
        (round_time(30662982) + 0.5, 30662983),
    ],
)
def test_first_round_at_or_after(moment: float, expected: int) -> None:
    assert round_at_or_after(moment) == expected
    assert round_time(expected) >= moment
    assert expected == 1 or round_time(expected - 1) < moment


def test_close_plus_delay_example() -> None:
    closed_at = 1767225600  # 2026-01-01T00:00:00Z
    beacon_round = round_at_or_after(closed_at + 300)
    assert round_time(beacon_round) - (closed_at + 300) in range(3)


def test_another_chain() -> None:
    chain = Chain(hash="00" * 32, public_key="", genesis_time=1000, period=30, scheme="x")
    assert round_at_or_after(1000, chain) == 1
    assert round_at_or_after(1001, chain) == 2
    assert round_at_or_after(1060, chain) == 3
