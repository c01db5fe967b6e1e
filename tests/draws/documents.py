"""The two published documents of DRAWS.md section 5, built from known-answer vector 1."""

import copy
from typing import Any

from draws.verify import QUICKNET
from tests.draws import vectors as v

DRAW_ID = 17


def draw_document() -> dict[str, Any]:
    """The body of GET /api/v1/draws/{id}/ for a completed drand draw."""
    return copy.deepcopy(
        {
            "id": DRAW_ID,
            "house_id": v.V1_HOUSE_ID,
            "status": "completed",
            "closed_at": "2026-01-01T00:00:00Z",
            "completed_at": "2026-01-01T00:05:03Z",
            "winning_ticket_number": v.V1_WINNING_TICKET,
            "verification": {
                "algorithm_version": 1,
                "commitment": v.V1_COMMITMENT,
                "seed": v.V1_SEED,
                "tickets_root": v.V1_TICKETS_ROOT,
                "tickets_count": len(v.V1_TICKET_NUMBERS),
                "beacon_chain": QUICKNET.hash,
                "beacon_round": v.V1_BEACON_ROUND,
                "beacon_randomness": v.V1_BEACON_RANDOMNESS,
                "beacon_signature": v.V1_BEACON_SIGNATURE,
                "entropy_source": "drand",
                "winning_index": v.V1_INDICES[0],
                "winning_ticket_number": v.V1_WINNING_TICKET,
                "alternates": v.V1_ALTERNATES,
            },
        }
    )


def tickets_document() -> dict[str, Any]:
    """The body of GET /api/v1/draws/{id}/tickets/."""
    leaves = [
        {"ticket_number": number, "holder": holder}
        for number, holder in zip(v.V1_TICKET_NUMBERS, v.V1_HOLDERS, strict=True)
    ]
    return {
        "draw_id": DRAW_ID,
        "house_id": v.V1_HOUSE_ID,
        "tickets_root": v.V1_TICKETS_ROOT,
        "tickets_count": len(leaves),
        "leaves": leaves,
    }


def waiting_draw_document() -> dict[str, Any]:
    """The same draw after close, still waiting for its beacon round."""
    draw = draw_document()
    draw.update(status="waiting_entropy", completed_at=None, winning_ticket_number=None)
    draw["verification"].update(
        beacon_randomness=None,
        beacon_signature=None,
        entropy_source=None,
        winning_index=None,
        winning_ticket_number=None,
        alternates=[],
    )
    return draw
