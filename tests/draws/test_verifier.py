"""draws/verify.py as a player runs it: a subprocess on the two published JSON bodies."""

import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from draws.verify import draw_material, pick_indices, verify_documents
from tests.draws import vectors as v
from tests.draws.documents import draw_document, tickets_document, waiting_draw_document
from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, flip_bit

REPO = Path(__file__).resolve().parents[2]
VERIFY = REPO / "draws" / "verify.py"
ALL_OK = dict.fromkeys(
    ["commitment", "tickets_count", "tickets_root", "beacon_signature", "winner"], "ok"
)


def _run(tmp_path: Path, draw: dict, tickets: dict, *, script: Path = VERIFY) -> tuple[int, dict]:
    draw_path, tickets_path = tmp_path / "draw.json", tmp_path / "tickets.json"
    draw_path.write_text(json.dumps(draw))
    tickets_path.write_text(json.dumps(tickets))
    completed = subprocess.run(
        [sys.executable, str(script), "--draw", str(draw_path), "--tickets", str(tickets_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=script.parent.parent,
    )
    return completed.returncode, json.loads(completed.stdout)


def test_verifier_reproduces_the_winner(tmp_path: Path) -> None:
    code, report = _run(tmp_path, draw_document(), tickets_document())
    assert code == 0
    assert report == {
        "ok": True,
        "winning_ticket_number": v.V1_WINNING_TICKET,
        "alternates": v.V1_ALTERNATES,
        "checks": ALL_OK,
    }


def test_verifier_runs_alone_outside_the_project(tmp_path: Path) -> None:
    # Only the file itself, in a folder with nothing else: it needs no project module.
    alone = tmp_path / "elsewhere" / "verify.py"
    alone.parent.mkdir()
    shutil.copy(VERIFY, alone)
    (alone.parent / "selectors.py").write_text("raise ImportError('shadowed the stdlib')\n")
    code, report = _run(tmp_path, draw_document(), tickets_document(), script=alone)
    assert (code, report["winning_ticket_number"]) == (0, v.V1_WINNING_TICKET)


def _alter_holder(draw: dict, tickets: dict) -> None:
    holder = tickets["leaves"][4]["holder"]
    tickets["leaves"][4]["holder"] = holder[:-1] + ("0" if holder[-1] != "0" else "1")


def _alter_ticket_number(draw: dict, tickets: dict) -> None:
    tickets["leaves"][2]["ticket_number"] = 4


def _drop_leaf(draw: dict, tickets: dict) -> None:
    del tickets["leaves"][0]


def _alter_seed(draw: dict, tickets: dict) -> None:
    draw["verification"]["seed"] = "ff" + v.V1_SEED[2:]


def _alter_count(draw: dict, tickets: dict) -> None:
    draw["verification"]["tickets_count"] = 11


def _alter_signature(draw: dict, tickets: dict) -> None:
    draw["verification"]["beacon_signature"] = flip_bit(v.V1_BEACON_SIGNATURE, 5)


@pytest.mark.parametrize(
    ("alter", "failed"),
    [
        (_alter_holder, "tickets_root"),
        (_alter_ticket_number, "tickets_root"),
        (_drop_leaf, "tickets_count"),
        (_alter_seed, "commitment"),
        (_alter_count, "tickets_count"),
        (_alter_signature, "beacon_signature"),
    ],
    ids=["leaf-holder", "leaf-number", "leaf-dropped", "seed", "count", "signature"],
)
def test_verifier_names_the_failed_check(
    tmp_path: Path, alter: Callable[[dict, dict], None], failed: str
) -> None:
    draw, tickets = draw_document(), tickets_document()
    alter(draw, tickets)
    code, report = _run(tmp_path, draw, tickets)
    assert code == 1
    assert report["ok"] is False
    assert report["checks"][failed].startswith("failed: ")


def _report_after(change: Callable[[dict, dict], Any]) -> dict:
    draw, tickets = draw_document(), tickets_document()
    change(draw, tickets)
    return verify_documents(draw, tickets)


def test_altered_seed_also_changes_the_winner() -> None:
    report = _report_after(_alter_seed)
    assert report["checks"]["commitment"].startswith("failed")
    assert report["checks"]["winner"].startswith("failed")


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        (
            lambda d, t: d["verification"].update(beacon_round=v.V1_BEACON_ROUND + 1),
            "beacon_signature",
        ),
        (
            lambda d, t: d["verification"].update(beacon_signature=QUICKNET_ROUNDS[3]["signature"]),
            "beacon_signature",
        ),
        (lambda d, t: d["verification"].update(beacon_randomness="00" * 32), "beacon_signature"),
        (lambda d, t: d["verification"].update(beacon_chain="ab" * 32), "beacon_signature"),
        (lambda d, t: d.update(winning_ticket_number=55), "winner"),
        (lambda d, t: d["verification"].update(winning_ticket_number=55), "winner"),
        (lambda d, t: d["verification"].update(winning_index=8), "winner"),
        (lambda d, t: d["verification"].update(alternates=[21, 13, 55]), "winner"),
        (lambda d, t: d["verification"].update(algorithm_version=2), "winner"),
        (lambda d, t: d["verification"].update(tickets_root="00" * 32), "tickets_root"),
        (lambda d, t: t.update(tickets_root="00" * 32), "tickets_root"),
        (lambda d, t: t.update(tickets_count=9), "tickets_count"),
        (lambda d, t: t.update(draw_id=18), "tickets_root"),
        (lambda d, t: t["leaves"].reverse(), "tickets_root"),
        (lambda d, t: t["leaves"][3].update(holder="XYZ"), "tickets_root"),
        (lambda d, t: d["verification"].update(seed="not hex"), "commitment"),
    ],
    ids=[
        "wrong-round",
        "other-rounds-signature",
        "randomness-not-from-signature",
        "unknown-chain",
        "draw-winner",
        "verification-winner",
        "winning-index",
        "alternates-order",
        "algorithm-version",
        "published-root",
        "list-root",
        "list-count",
        "other-draw",
        "leaf-order",
        "malformed-leaf",
        "malformed-seed",
    ],
)
def test_other_alterations_are_named(change: Callable[[dict, dict], Any], failed: str) -> None:
    report = _report_after(change)
    assert report["ok"] is False
    assert report["checks"][failed].startswith("failed: "), report["checks"]


def test_manual_entropy_skips_the_beacon_check_and_still_verifies_the_winner(
    tmp_path: Path,
) -> None:
    draw, tickets = draw_document(), tickets_document()
    entropy = "11" * 32
    material = draw_material(
        randomness_hex=entropy,
        house_id=v.V1_HOUSE_ID,
        seed_hex=v.V1_SEED,
        tickets_count=10,
        tickets_root_hex=v.V1_TICKETS_ROOT,
    )
    indices = pick_indices(material, 10, 3)
    numbers = [v.V1_TICKET_NUMBERS[i] for i in indices]
    draw["winning_ticket_number"] = numbers[0]
    draw["verification"].update(
        entropy_source="manual",
        beacon_randomness=entropy,
        beacon_signature="",
        winning_index=indices[0],
        winning_ticket_number=numbers[0],
        alternates=numbers[1:],
    )
    code, report = _run(tmp_path, draw, tickets)
    assert code == 0
    assert report["checks"] == {**ALL_OK, "beacon_signature": "skipped: manual entropy"}
    assert report["winning_ticket_number"] == numbers[0]


def test_a_draw_waiting_for_its_round_checks_what_is_known() -> None:
    report = verify_documents(waiting_draw_document(), tickets_document())
    assert report["ok"] is True
    assert report["winning_ticket_number"] is None
    assert report["checks"]["commitment"] == "ok"
    assert report["checks"]["tickets_root"] == "ok"
    assert report["checks"]["beacon_signature"].startswith("skipped: ")
    assert report["checks"]["winner"].startswith("skipped: ")


def test_garbage_documents_fail_without_a_traceback(tmp_path: Path) -> None:
    code, report = _run(tmp_path, {"id": 1}, {"leaves": "no"})  # type: ignore[arg-type]
    assert code == 1
    assert all(value.startswith("failed: ") for value in report["checks"].values())
    (tmp_path / "broken.json").write_text("{not json")
    completed = subprocess.run(
        [sys.executable, str(VERIFY), "--draw", str(tmp_path / "broken.json"), "--tickets", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["ok"] is False


def test_verify_py_imports_only_the_standard_library_and_py_ecc() -> None:
    tree = ast.parse(VERIFY.read_text())
    modules = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    outside = {m for m in modules if m.split(".")[0] not in sys.stdlib_module_names}
    assert {m.split(".")[0] for m in outside} == {"py_ecc"}
