"""The published draw documents, staff conduct, proofs and stats, through the HTTP API."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from draws import leaves as leaves_module
from draws import verify
from draws.leaves import PackedLeaves, SubtreeIndex
from draws.models import Draw, FrozenTicketList
from draws.services.passes import run_due
from draws.services.redraw import disqualify_winner
from purchases.models import Ticket
from purchases.services.refunds import refund_purchase
from tests.conftest import client_for
from tests.draws.flow import ENTROPY, activated_house, buy, documents, end_sales, live_draw

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def frozen(make_player):
    """A closed house with 3 players' tickets, its list frozen, waiting for staff."""
    house = activated_house(total_tickets=40)
    players = [make_player() for _ in range(3)]
    for quantity, player in zip((3, 1, 2), players, strict=True):
        buy(player, house, quantity)
    end_sales(house)
    run_due()
    return house, players, live_draw(house)


def conduct(client, draw_id: int, body: dict):
    return client.post(f"/api/v1/draws/{draw_id}/conduct/", body, format="json")


def run_verifier(tmp_path: Path, draw_document: dict, tickets_document: dict):
    (tmp_path / "draw.json").write_text(json.dumps(draw_document))
    (tmp_path / "tickets.json").write_text(json.dumps(tickets_document))
    result = subprocess.run(
        [
            sys.executable,
            "draws/verify.py",
            "--draw",
            str(tmp_path / "draw.json"),
            "--tickets",
            str(tmp_path / "tickets.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, json.loads(result.stdout)


def test_conducted_draw_is_reproduced_by_the_standalone_verifier(
    frozen, staff, player_client, tmp_path
) -> None:
    _house, _, draw = frozen
    answer = conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "completed"

    draw_document, tickets_document = documents(player_client, draw.pk)
    code, report = run_verifier(tmp_path, draw_document, tickets_document)

    assert code == 0, report
    assert report["ok"] is True
    assert report["winning_ticket_number"] == body["winning_ticket_number"]
    assert report["alternates"] == body["verification"]["alternates"]
    assert report["checks"]["beacon_signature"].startswith("skipped")
    assert tickets_document["tickets_count"] == 6 == len(tickets_document["leaves"])
    assert tickets_document["tickets_root"] == draw_document["verification"]["tickets_root"]


def test_the_verifier_names_a_tampered_leaf(frozen, staff, player_client, tmp_path) -> None:
    _, _, draw = frozen
    conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    draw_document, tickets_document = documents(player_client, draw.pk)
    tickets_document["leaves"][0]["holder"] = "0" * 32
    code, report = run_verifier(tmp_path, draw_document, tickets_document)
    assert code == 1
    assert report["checks"]["tickets_root"].startswith("failed")


def test_verify_draw_command_checks_the_apis_own_documents(frozen, staff, capsys) -> None:
    _, _, draw = frozen
    conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    call_command("verify_draw", draw.pk)
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["winning_ticket_number"] == Draw.objects.get(pk=draw.pk).winning_ticket_number


def test_document_shapes_before_and_after_the_result(frozen, staff, player_client) -> None:
    house, _, draw = frozen
    body = player_client.get(f"/api/v1/draws/{draw.pk}/").json()
    assert body["status"] == "waiting_entropy"
    assert body["house_id"] == house.pk
    assert body["winning_ticket_number"] is None
    record = body["verification"]
    assert record["seed"] == bytes(house.draw_seed).hex()  # published from close on
    assert record["commitment"] == house.draw_commitment
    assert (record["beacon_randomness"], record["beacon_signature"]) == (None, None)
    assert record["entropy_source"] is None
    assert record["beacon_round"] == draw.beacon_round
    listed = player_client.get(f"/api/v1/draws/?house_id={house.pk}").json()["results"]
    assert [item["id"] for item in listed] == [draw.pk]
    assert player_client.get("/api/v1/draws/?house_id=x").status_code == 422


def test_players_cannot_conduct(frozen, player_client) -> None:
    _, _, draw = frozen
    answer = conduct(player_client, draw.pk, {"entropy": ENTROPY, "source": "dice"})
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("role", "allowed"), [("operator", True), ("finance", False)])
def test_only_staff_allowed_to_conduct_draws_can(frozen, make_player, role, allowed) -> None:
    from tests.console.staff import staff_member

    _, _, draw = frozen
    answer = conduct(
        client_for(staff_member(make_player, role)), draw.pk, {"entropy": ENTROPY, "source": "d"}
    )
    assert answer.status_code == (200 if allowed else 403), answer.content
    completed = Draw.objects.get(pk=draw.pk).status == Draw.Status.COMPLETED
    assert completed is allowed


def test_conduct_same_input_replays_and_other_input_conflicts(frozen, staff) -> None:
    _, _, draw = frozen
    client = client_for(staff)
    first = conduct(client, draw.pk, {"entropy": ENTROPY, "source": "dice"})
    again = conduct(client, draw.pk, {"entropy": ENTROPY, "source": "dice"})
    other = conduct(client, draw.pk, {"entropy": "ab" * 32, "source": "dice"})
    assert first.status_code == again.status_code == 200
    assert again.json()["winning_ticket_number"] == first.json()["winning_ticket_number"]
    assert other.status_code == 409
    assert other.json()["code"] == "invalid_state"


def test_wrong_round_or_signature_is_a_validation_error(frozen, staff) -> None:
    from tests.draws.quicknet_rounds import RECORDED_ROUND, RECORDED_SIGNATURE

    _, _, draw = frozen
    client = client_for(staff)
    wrong_round = conduct(
        client, draw.pk, {"beacon_round": RECORDED_ROUND, "beacon_signature": RECORDED_SIGNATURE}
    )
    wrong_signature = conduct(
        client, draw.pk, {"beacon_round": draw.beacon_round, "beacon_signature": RECORDED_SIGNATURE}
    )
    malformed = conduct(client, draw.pk, {"entropy": "zz", "source": "dice"})
    both = conduct(client, draw.pk, {"entropy": ENTROPY, "beacon_round": 1})
    for answer, field in (
        (wrong_round, "beacon_round"),
        (wrong_signature, "beacon_signature"),
        (malformed, "entropy"),
        (both, None),
    ):
        assert answer.status_code == 422, answer.content
        assert answer.json()["code"] == "validation_error"
        assert field in [error["field"] for error in answer.json()["errors"]]
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.WAITING_ENTROPY


def test_winner_is_shown_only_to_the_winner_and_staff(frozen, staff) -> None:
    house, players, draw = frozen
    conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    winning = Draw.objects.get(pk=draw.pk).awarded_ticket_number
    owner = Ticket.objects.get(house=house, ticket_number=winning).owner
    for viewer in players:
        winner = client_for(viewer).get(f"/api/v1/draws/{draw.pk}/").json()["winner"]
        if viewer == owner:
            assert winner == {"user_id": owner.pk, "username": owner.username}
        else:
            assert winner is None
    assert client_for(staff).get(f"/api/v1/draws/{draw.pk}/").json()["winner"]["user_id"] == (
        owner.pk
    )


def test_proof_of_ones_own_ticket_verifies_and_others_are_not_found(frozen) -> None:
    _house, players, draw = frozen
    ticket = Ticket.objects.filter(owner=players[2]).order_by("ticket_number").last()
    proof = client_for(players[2]).get(f"/api/v1/me/tickets/{ticket.pk}/proof/")
    assert proof.status_code == 200
    body = proof.json()
    assert (body["ticket_number"], body["draw_id"], body["tree_size"]) == (
        ticket.ticket_number,
        draw.pk,
        6,
    )
    leaf = verify.leaf_bytes(body["ticket_number"], body["holder"])
    path = [bytes.fromhex(node) for node in body["audit_path"]]
    root = bytes.fromhex(body["tickets_root"])
    assert verify.verify_inclusion(leaf, body["leaf_index"], body["tree_size"], path, root)
    assert client_for(players[0]).get(f"/api/v1/me/tickets/{ticket.pk}/proof/").status_code == 404


def test_proof_before_close_is_not_available_yet(player, player_client) -> None:
    house = activated_house()
    buy(player, house, 1)
    ticket = Ticket.objects.get(owner=player)
    answer = player_client.get(f"/api/v1/me/tickets/{ticket.pk}/proof/")
    assert answer.status_code == 409


def test_stats_are_counted_by_the_database(frozen, staff) -> None:
    house, _players, draw = frozen
    conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    winning = Draw.objects.get(pk=draw.pk).awarded_ticket_number
    owner = Ticket.objects.get(house=house, ticket_number=winning).owner
    other_house = activated_house()
    buy(owner, other_house, 2)
    stats = client_for(owner).get("/api/v1/me/stats/").json()
    held = Ticket.objects.filter(owner=owner).count()
    assert stats["tickets_total"] == stats["tickets_active"] == held
    assert stats["houses_entered"] == 2
    assert stats["wins"] == 1
    assert stats["total_spent"] == f"{10 * held:.2f}"


def test_redraw_keeps_history_and_both_documents_verify(
    frozen, staff, player_client, tmp_path
) -> None:
    house, _, draw = frozen
    conduct(client_for(staff), draw.pk, {"entropy": ENTROPY, "source": "dice"})
    first = Draw.objects.get(pk=draw.pk)

    redraw = disqualify_winner(draw_id=draw.pk, actor=staff, reason="winner is an employee")

    assert redraw.awarded_ticket_number == first.alternates[0]
    listed = player_client.get(f"/api/v1/draws/?house_id={house.pk}").json()["results"]
    assert [(item["id"], item["status"]) for item in listed] == [
        (redraw.pk, "completed"),
        (draw.pk, "superseded"),
    ]
    new, old = listed
    assert new["supersedes_draw_id"] == draw.pk and old["superseded_by_draw_id"] == redraw.pk
    assert new["disqualified"][0]["ticket_number"] == first.winning_ticket_number
    assert "reason" not in new["disqualified"][0]  # staff only
    staff_view = client_for(staff).get(f"/api/v1/draws/{redraw.pk}/").json()
    assert staff_view["disqualified"][0]["reason"] == "winner is an employee"
    for draw_id in (draw.pk, redraw.pk):
        code, report = run_verifier(tmp_path, *documents(player_client, draw_id))
        assert code == 0, report


def test_the_seed_is_never_shown_before_close(make_player, staff, staff_client, player_client):
    house = activated_house()
    buy(make_player(), house, 2)
    seed = bytes(house.draw_seed).hex()
    pages = [
        player_client.get(f"/api/v1/houses/{house.pk}/").content,
        player_client.get("/api/v1/houses/").content,
        player_client.get("/api/v1/draws/").content,
        staff_client.get(f"/admin/lottery/house/{house.pk}/change/").content,
        staff_client.get("/admin/lottery/house/").content,
    ]
    assert all(seed not in page.decode() for page in pages)
    assert player_client.get(f"/api/v1/houses/{house.pk}/").json()["draw_commitment"] == (
        house.draw_commitment
    )


def test_admin_pages_show_the_record_and_conduct_through_the_service(frozen, staff_client):
    _, _, draw = frozen
    change = staff_client.get(f"/admin/draws/draw/{draw.pk}/change/")
    assert change.status_code == 200
    assert draw.tickets_root in change.content.decode()
    assert f"/api/v1/draws/{draw.pk}/" in change.content.decode()
    page = staff_client.get(f"/admin/draws/draw/{draw.pk}/conduct/")
    assert page.status_code == 200 and draw.seed in page.content.decode()
    answer = staff_client.post(
        f"/admin/draws/draw/{draw.pk}/conduct/", {"entropy": ENTROPY, "source": "dice"}
    )
    assert answer.status_code == 302
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.COMPLETED
    assert staff_client.get("/admin/draws/draw/").status_code == 200
    refused = staff_client.post(f"/admin/draws/draw/{draw.pk}/disqualify/", {"reason": ""})
    assert refused.status_code == 200  # the form asks for a reason
    staff_client.post(f"/admin/draws/draw/{draw.pk}/disqualify/", {"reason": "fraud"})
    assert Draw.objects.filter(house_id=draw.house_id).count() == 2


def test_every_proof_reads_one_subtree_and_equals_the_path_over_the_whole_list(
    make_player, monkeypatch
) -> None:
    monkeypatch.setattr(leaves_module, "SUBTREE_HEIGHT", 1)  # subtrees of 2 leaves
    house = activated_house(total_tickets=30)
    players = [make_player() for _ in range(3)]
    purchases = [
        buy(player, house, quantity) for player, quantity in zip(players, (3, 1, 2), strict=True)
    ]
    refund_purchase(reservation=purchases[1], reason="staff")  # ticket 4 leaves before close
    end_sales(house)
    run_due()
    ticket_list = FrozenTicketList.objects.get(house=house)
    whole = PackedLeaves(bytes(ticket_list.leaves))
    assert [whole.ticket_number(i) for i in range(len(whole))] == [1, 2, 3, 5, 6]
    stored = SubtreeIndex.unpack(bytes(ticket_list.subtree_index))
    assert (stored.height, stored.firsts) == (1, [1, 3, 6])

    def proof_of(ticket: Ticket) -> dict:
        answer = client_for(ticket.owner).get(f"/api/v1/me/tickets/{ticket.pk}/proof/")
        assert answer.status_code == 200, answer.content
        return answer.json()

    for ticket in Ticket.objects.filter(house=house, status="active"):
        body = proof_of(ticket)
        index = body["leaf_index"]
        assert whole.ticket_number(index) == ticket.ticket_number
        path = [bytes.fromhex(node) for node in body["audit_path"]]
        assert path == verify.audit_path(whole, index)
        leaf = verify.leaf_bytes(ticket.ticket_number, body["holder"])
        root = bytes.fromhex(body["tickets_root"])
        assert verify.verify_inclusion(leaf, index, body["tree_size"], path, root)
    refunded = Ticket.objects.get(house=house, ticket_number=4)
    answer = client_for(refunded.owner).get(f"/api/v1/me/tickets/{refunded.pk}/proof/")
    assert answer.status_code == 404

    # A list frozen by a process older than the index: the proof builds one in memory
    # (a selector writes nothing; migration 0004 indexed the lists frozen before).
    FrozenTicketList.objects.filter(pk=ticket_list.pk).update(subtree_index=None)
    monkeypatch.setattr(leaves_module, "SUBTREE_HEIGHT", 2)
    five = Ticket.objects.get(house=house, ticket_number=5)
    body = proof_of(five)
    assert [bytes.fromhex(node) for node in body["audit_path"]] == verify.audit_path(whole, 3)
    assert FrozenTicketList.objects.get(pk=ticket_list.pk).subtree_index is None
