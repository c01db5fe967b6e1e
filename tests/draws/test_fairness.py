"""Chi-square over many deterministic draws: every index is as likely as any other."""

import math
import random

import pytest

from draws.verify import pick_indices

DRAWS_PER_INDEX = 40


def _chi_square_bounds(degrees: int, z: float = 3.0902) -> tuple[float, float]:
    """Two-sided 0.1 % bounds of chi-square (Wilson-Hilferty; no scipy needed)."""
    spread = z * math.sqrt(2 / (9 * degrees))
    centre = 1 - 2 / (9 * degrees)
    return degrees * (centre - spread) ** 3, degrees * (centre + spread) ** 3


def _chi_square(counts: list[int], expected: float) -> float:
    return sum((count - expected) ** 2 / expected for count in counts)


@pytest.mark.parametrize(
    ("tickets_count", "position"),
    [(2**9 + 1, 0), (2**9 + 1, 1), (3, 0), (1000, 0), (2**8, 0)],
    ids=["513-winner", "513-first-alternate", "3-winner", "1000-winner", "256-winner"],
)
def test_no_index_is_favoured(tickets_count: int, position: int) -> None:
    rng = random.Random(20260901 + tickets_count)  # fixed: the test is deterministic
    draws = DRAWS_PER_INDEX * max(tickets_count, 250)
    counts = [0] * tickets_count
    for _ in range(draws):
        counts[pick_indices(rng.randbytes(32), tickets_count, position)[position]] += 1
    low, high = _chi_square_bounds(tickets_count - 1)
    statistic = _chi_square(counts, draws / tickets_count)
    assert low < statistic < high, (statistic, low, high)


def test_the_bounds_reject_a_biased_picker() -> None:
    # The same statistic flags modulo folding of a too-narrow value (0..767) onto 513 slots.
    rng = random.Random(7)
    tickets_count, draws = 2**9 + 1, DRAWS_PER_INDEX * (2**9 + 1)
    counts = [0] * tickets_count
    for _ in range(draws):
        counts[rng.randrange(768) % tickets_count] += 1
    _, high = _chi_square_bounds(tickets_count - 1)
    assert _chi_square(counts, draws / tickets_count) > high
