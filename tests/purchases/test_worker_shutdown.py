"""A real Celery worker stopped in the middle of a checkout, between the charge and the tickets.

The checkout task pauses at the ``checkout.after_charge`` failpoint (the
gateway has charged, nothing is recorded yet). Then the worker gets SIGTERM
(warm shutdown: it finishes the task before it exits) or SIGKILL (its main
process and its pool processes die at once, as on an OOM kill or a lost
machine: the late-acked message stays unacknowledged in the broker and is
redelivered). A new worker starts, and the checkout ends exactly once: one
charge in the sandbox ledger, one contiguous block of tickets.
"""

import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from core import failpoints
from lottery.models import House
from payments.models import Payment, SandboxLedgerEntry
from purchases.models import Ticket
from reservations.models import Reservation
from tests.conftest import client_for
from tests.purchases.test_checkout_worker import checkout_via_api, reserve_via_api
from tests.workers import RunningWorker, celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PAUSE_SECONDS = 4


def wait_until_paused(worker: RunningWorker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while failpoints.hits("checkout.after_charge") < 1:
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.05)


def task_ids(log: str) -> list[str]:
    """Ids of the ``checkout.process`` messages a worker received (one checkout per test)."""
    return re.findall(r"checkout\.process\[([0-9a-f-]+)\] received", log)


def pool_processes(main_pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == main_pid:
                children.append(int(entry.name))
    return children


def wait_for_status(
    reservation_id: str, status: str, worker: RunningWorker, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while Reservation.objects.get(pk=reservation_id).status != status:
        assert time.monotonic() < deadline, worker.log()[-4000:]
        time.sleep(0.1)


def assert_completed_exactly_once(reservation_id: str, house: House, quantity: int) -> None:
    reservation = Reservation.objects.get(pk=reservation_id)
    assert reservation.status == Reservation.Status.COMPLETED
    charges = SandboxLedgerEntry.objects.filter(kind="charge")
    assert [entry.idempotency_key for entry in charges] == [reservation_id]  # charged once
    assert Payment.objects.get(reservation_id=reservation_id).status == Payment.Status.SUCCEEDED
    numbers = sorted(
        Ticket.objects.filter(reservation_id=reservation_id).values_list("ticket_number", flat=True)
    )
    assert numbers == list(range(1, quantity + 1))  # one contiguous block, issued once
    assert Ticket.objects.count() == quantity
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved, house.next_ticket_number) == (
        quantity,
        0,
        quantity + 1,
    )
    call_command("check_integrity")


def test_sigterm_mid_checkout_lets_the_worker_finish_it_and_a_new_worker_does_not_repeat_it(
    settings, player, house
) -> None:
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 3)
    failpoints.arm("checkout.after_charge", action=f"sleep:{PAUSE_SECONDS}", times=1)
    with celery_worker(settings, name="sigterm-first") as first:
        checkout_via_api(client, reservation_id, "tok_ok")
        wait_until_paused(first)
        # Charged at the gateway, nothing recorded yet: the task is mid-way.
        assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
        assert Reservation.objects.get(pk=reservation_id).status == "processing"
        stopped_at = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=60) == 0  # warm shutdown: it waited for the task
        took = time.monotonic() - stopped_at
        first_log = first.log()
    assert "Warm shutdown" in first_log
    [task_id] = task_ids(first_log)
    assert re.search(rf"checkout\.process\[{task_id}\] succeeded", first_log), first_log[-3000:]
    assert took < PAUSE_SECONDS + 10
    assert Reservation.objects.get(pk=reservation_id).status == "completed"

    with celery_worker(settings, name="sigterm-second") as second:
        time.sleep(3)  # a message left unacknowledged would be delivered now
        assert task_ids(second.log()) == []
    assert_completed_exactly_once(reservation_id, house, 3)


def test_sigkill_mid_checkout_is_redelivered_to_a_new_worker_and_completes_once(
    settings, monkeypatch, player, house
) -> None:
    # Redelivery of an unacknowledged message waits for the broker's visibility
    # timeout (4 x the task runtime bound, config/celery.py): 20 s here, not 20 min.
    monkeypatch.setenv("CELERY_TASK_MAX_RUNTIME_SECONDS", "5")
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 2)
    failpoints.arm("checkout.after_charge", action="sleep:30", times=1)
    with celery_worker(settings, name="sigkill-first") as first:
        checkout_via_api(client, reservation_id, "tok_ok")
        wait_until_paused(first)
        assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
        pool = pool_processes(first.process.pid)
        assert pool, "no pool processes found"
        for pid in [first.process.pid, *pool]:  # the whole worker dies at once
            os.kill(pid, signal.SIGKILL)
        assert first.process.wait(timeout=10) == -signal.SIGKILL
        for pid in pool:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                assert time.monotonic() < deadline, f"pool process {pid} survived SIGKILL"
                time.sleep(0.05)
        [task_id] = task_ids(first.log())
    # Killed before it recorded anything: charged, payment pending, no tickets.
    assert Reservation.objects.get(pk=reservation_id).status == "processing"
    assert Payment.objects.get(reservation_id=reservation_id).status == Payment.Status.PENDING
    assert not Ticket.objects.exists()

    with celery_worker(settings, name="sigkill-second") as second:
        wait_for_status(reservation_id, "completed", second, timeout=90)
        assert task_ids(second.log()) == [task_id]  # the same message again
    assert failpoints.hits("checkout.after_charge") == 1  # the redelivery did not pause
    assert_completed_exactly_once(reservation_id, house, 2)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_sigterm_to_the_whole_process_group_requeues_the_checkout_and_it_completes_once(
    settings, player, house
) -> None:
    """What supervisord's ``stopasgroup`` (scripts/stack.py) and systemd's default
    ``KillMode=control-group`` do: SIGTERM reaches the pool processes too."""
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 2)
    failpoints.arm("checkout.after_charge", action=f"sleep:{PAUSE_SECONDS}", times=1)
    with celery_worker(settings, name="groupterm-first") as first:
        checkout_via_api(client, reservation_id, "tok_ok")
        wait_until_paused(first)
        pool = pool_processes(first.process.pid)
        for pid in [first.process.pid, *pool]:
            os.kill(pid, signal.SIGTERM)
        first.process.wait(timeout=60)
        first_log = first.log()
    [task_id] = task_ids(first_log)
    status = Reservation.objects.get(pk=reservation_id).status
    with celery_worker(settings, name="groupterm-second") as second:
        wait_for_status(reservation_id, "completed", second, timeout=90)
        second_log = second.log()
    # Either the pool process finished the task before exiting, or it died with it and the
    # message was redelivered: never both, never neither.
    finished_first = re.search(rf"checkout\.process\[{task_id}\] succeeded", first_log)
    redelivered = task_ids(second_log) == [task_id]
    assert bool(finished_first) != redelivered, (status, first_log[-3000:])
    print(f"group SIGTERM: finished by the first worker={bool(finished_first)}, status={status}")
    assert_completed_exactly_once(reservation_id, house, 2)


def test_make_stack_sends_sigterm_to_the_worker_main_process_only(tmp_path) -> None:
    """So ``make stack``'s stop is the warm shutdown of the first test, not the group's."""
    import importlib.util

    from tests.workers import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("stack", PROJECT_ROOT / "scripts" / "stack.py")
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    config = stack.supervisord_config(stack.read_procfile(PROJECT_ROOT / "Procfile"), tmp_path)
    sections = {block.split("]", 1)[0]: block for block in config.split("\n[")[1:] if "]" in block}
    worker = sections["program:worker"]
    assert "stopsignal=TERM" in worker and "stopasgroup=false" in worker
    assert "killasgroup=true" in worker  # SIGKILL after stopwaitsecs still reaches the pool
    assert "stopasgroup=true" in sections["program:web"]


def test_sigterm_stops_a_long_outbox_relay_after_its_current_batch(settings) -> None:
    """The shutdown flag end to end: set in the worker's main process by SIGTERM, read by the
    pool process running the relay, which finishes its batch and starts no other."""
    from core.models import OutboxEvent
    from core.tasks import relay_outbox

    OutboxEvent.objects.bulk_create(  # no on-commit relay: only the task below delivers
        OutboxEvent(event_type="tests.backlog", payload={"n": n}) for n in range(250)
    )
    failpoints.arm("relay_outbox.batch", action=f"sleep:{PAUSE_SECONDS}", times=10)
    with celery_worker(settings, name="relay-sigterm") as worker:
        relay_outbox.delay()
        deadline = time.monotonic() + 30
        while failpoints.hits("relay_outbox.batch") < 1:  # inside its first batch
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.05)
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=60) == 0
        log = worker.log()
    assert "relay_outbox: the worker is shutting down; stopped after 1 batch(es)" in log, log[
        -3000:
    ]
    assert failpoints.hits("relay_outbox.batch") == 1
    delivered = OutboxEvent.objects.filter(delivered_at__isnull=False).count()
    assert delivered == 100  # one batch (RELAY_BATCH_SIZE); 150 wait for the next run
