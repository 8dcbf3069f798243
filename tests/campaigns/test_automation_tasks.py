"""campaigns/tasks.py's automation tasks on real worker processes and the real broker: a
refresh's entrants enter once, an event posted twice triggers once, a worker killed with
SIGKILL mid-automation sends each step once and nothing after an exit, and two campaigns and
an automation sending at once keep every customer under a cap of one per 7 days. The fake
provider's record is the judge."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import AutomationEntry, AutomationSend, Campaign, CapSlot, LedgerEntry
from campaigns.services.automations.create import automation_create
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from campaigns.tasks import automation_tick_task, campaign_pump_task
from core.db import is_postgres
from customers.models import Customer, Order
from segments.services import membership
from tests.campaigns.automations import auto_spec, make_people, step, us_segment
from tests.campaigns.conftest import make_segment, spec
from tests.campaigns.fakeprovider import FakeProviderServer
from tests.campaigns.test_tasks import _kill_hard, _stop
from tests.conftest import wait_for, worker_start

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = postgres_only


S = AutomationSend.Status
E = AutomationEntry.Status
OPEN = (S.PENDING, S.SENDING, S.UNKNOWN)


def _env(fake, token: str, **extra) -> dict:
    return dict(
        EMAIL_PROVIDER="postmark", POSTMARK_SERVER_TOKEN=token, POSTMARK_API_URL=fake.url + "/",
        CAMPAIGN_SEND_TIMEOUT="1", CAMPAIGN_LEASE_SECONDS="4", CAMPAIGN_RECONCILE_AFTER_SECONDS="1",
        CAMPAIGN_STALE_SECONDS="2", CAMPAIGN_RETRY_BASE_SECONDS="0.2", CAMPAIGN_RETRY_MAX_SECONDS="1",
        CAMPAIGN_MAX_RETRIES="50", CAMPAIGN_BATCH_SIZE="100", CAMPAIGN_RATE_LIMIT="1000", CAMPAIGN_TASK_SECONDS="5",
    ) | extra


def _ticked(done):
    """What beat does every few seconds, until `done()`."""
    def check():
        automation_tick_task.delay()
        return done()
    return check


def _settled(automation) -> bool:
    return not AutomationSend.objects.filter(automation=automation, status__in=OPEN).exists() and \
        not AutomationEntry.objects.filter(automation=automation, status=E.ACTIVE).exists()


@pytest.mark.worker
@pytest.mark.timeout(240)
def test_a_refresh_adding_1000_enters_1000_through_the_worker_and_a_second_refresh_none(transactional_db, tmp_path):
    ids = make_people(1100, prefix="r")
    segment = us_segment()
    automation = automation_create(auto_spec(steps=[step(0)]))
    token = uuid.uuid4().hex
    with FakeProviderServer(token=token, keep_bodies=False) as fake:
        worker = worker_start(tmp_path / "worker.log", concurrency=2, **_env(fake, token))
        try:
            Customer.objects.filter(id__in=ids[:1000]).update(country="US")
            membership.segment_refresh(segment)
            wait_for(_ticked(lambda: AutomationEntry.objects.filter(automation=automation).count() == 1000
                             and _settled(automation)), timeout=120, interval=1.0, what="1,000 entries sent")
            membership.segment_refresh(segment)  # the same members: nobody new
            for _ in range(3):
                automation_tick_task.delay().get(timeout=30)
        finally:
            _stop(worker)
        received = fake.per_recipient()
    entries = AutomationEntry.objects.filter(automation=automation)
    assert entries.count() == 1000
    held = set(entries.filter(held_out=True).values_list("customer__email", flat=True))
    treated = set(entries.filter(held_out=False).values_list("customer__email", flat=True))
    assert 50 < len(held) < 150
    assert set(received) == treated and all(n == 1 for n in received.values())


@pytest.mark.worker
@pytest.mark.timeout(240)
def test_an_event_posted_twice_triggers_once(transactional_db, tmp_path, marketer_api):
    make_people(3, prefix="ev")
    automation = automation_create(auto_spec(name="browse", trigger={"event": "browse"}, holdout=0, exit=[],
                                             steps=[step(0)]))
    token = uuid.uuid4().hex
    at = timezone.now().isoformat()
    body = {"events": [{"customer": "ev1", "kind": "browse", "occurred_at": at, "properties": {"sku": "A1"}},
                       {"customer": "ev2", "kind": "cart", "occurred_at": at}]}
    with FakeProviderServer(token=token, keep_bodies=False) as fake:
        worker = worker_start(tmp_path / "worker.log", concurrency=2, **_env(fake, token))
        try:
            first = marketer_api.post("/api/events/", body, format="json")
            assert first.status_code == 200, first.content
            assert first.json()["created"] == 2
            wait_for(_ticked(lambda: len(fake.received) == 1 and _settled(automation)), timeout=60, interval=1.0,
                     what="the event's message")
            again = marketer_api.post("/api/events/", body, format="json")
            assert again.status_code == 200 and again.json()["created"] == 0
            for _ in range(3):
                automation_tick_task.delay().get(timeout=30)
        finally:
            _stop(worker)
        received = fake.per_recipient()
    assert received == {"ev1@example.com": 1}
    assert AutomationEntry.objects.filter(automation=automation).count() == 1


@pytest.mark.worker
@pytest.mark.timeout(300)
def test_a_killed_worker_mid_automation_sends_each_step_once_and_nothing_after_an_exit(transactional_db, tmp_path):
    # Given 3,000 entrants of a 3-step automation that exits on an order, with provider faults
    ids = make_people(3000, prefix="k")
    segment = us_segment()
    automation = automation_create(auto_spec(
        name="three", steps=[step(0), step(0.0005), step(0.0005)], exit=["ordered"], holdout=0.1,
    ))
    token = uuid.uuid4().hex
    with FakeProviderServer(token=token, keep_bodies=False) as fake:
        fake.faults.update({"every_429": 7, "retry_after": 0.3, "every_503": 11, "every_500": 13,
                            "every_hang": 17, "hang_seconds": 2.5})
        env = _env(fake, token)
        Customer.objects.filter(id__in=ids).update(country="US")
        membership.segment_refresh(segment)
        first = worker_start(tmp_path / "worker1.log", concurrency=2, **env)
        try:
            wait_for(_ticked(lambda: len(fake.received) >= 1500), timeout=90, interval=0.5,
                     what="the first worker to send 1,500 messages")
            # 300 entrants order mid-flow: whatever they have not been sent yet never goes
            now = timezone.now()
            Order.objects.bulk_create([Order(external_id=f"ko{cid}", customer_id=cid, amount=Decimal("9"),
                                             ordered_at=now) for cid in ids[:300]])
            _kill_hard(first)  # SIGKILL, worker and pool
        finally:
            _stop(first)
        killed_at = len(fake.received)
        second = worker_start(tmp_path / "worker2.log", concurrency=2, **env)
        try:
            wait_for(_ticked(lambda: _settled(automation)), timeout=150, interval=1.0,
                     what="the automation to settle after the kill")
        finally:
            _stop(second)
        received = list(fake.received)
        outcomes = fake.summary()["outcomes"]

    sends = {s["key"]: s for s in AutomationSend.objects.filter(automation=automation).values(
        "key", "entry_id", "step_index", "status", "sent_at")}
    per_key = Counter(r.key for r in received)
    entries = {e["id"]: e for e in AutomationEntry.objects.filter(automation=automation).values(
        "id", "held_out", "status", "exit_reason", "finished_at", "customer_id")}
    treated = [e for e in entries.values() if not e["held_out"]]
    assert len(entries) == 3000 and 200 < 3000 - len(treated) < 400
    assert killed_at < 3 * len(treated), "the kill must happen mid-flow"
    assert all(outcomes.get(f) for f in ("429", "503", "500", "hang")), outcomes
    assert {k: n for k, n in per_key.items() if n > 1} == {}, "no message twice"
    assert set(per_key) <= set(sends), "every message is a send row"
    # per entry: one message per step it reached, in order, and none after its exit
    steps_of: dict[int, list[int]] = {}
    for key in per_key:
        steps_of.setdefault(sends[key]["entry_id"], []).append(sends[key]["step_index"])
    held = {e["id"] for e in entries.values() if e["held_out"]}
    assert not held & set(steps_of), "the holdout gets nothing"
    for entry in treated:
        got = sorted(steps_of.get(entry["id"], []))
        assert got == list(range(len(got))), (entry, got)
        if entry["status"] == E.COMPLETED:
            assert got == [0, 1, 2]
        else:
            assert entry["status"] == E.EXITED and entry["exit_reason"] == "ordered", entry
            assert entry["customer_id"] in ids[:300]
            cancelled = [s for s in sends.values() if s["entry_id"] == entry["id"] and s["status"] == S.CANCELLED]
            assert len(cancelled) == 1 and cancelled[0]["step_index"] == len(got)
    assert sum(1 for e in treated if e["status"] == E.EXITED) > 0, "some exits must happen"
    for s in sends.values():  # the record agrees with the provider's
        assert (s["status"] == S.SENT) == (per_key.get(s["key"], 0) == 1), s


@pytest.mark.worker
@pytest.mark.timeout(300)
def test_two_campaigns_and_an_automation_under_a_cap_of_one_leave_nobody_over_it(transactional_db, tmp_path):
    # Given 600 customers in a segment, two campaigns and an automation, each capped at 1 per 7 days
    ids = make_people(600, prefix="cap")
    customers = list(Customer.objects.filter(id__in=ids))
    make_segment("everyone", customers)
    segment = us_segment()
    automation = automation_create(auto_spec(name="capped", holdout=0, steps=[step(0)], exit=[], frequency_cap=1))
    token = uuid.uuid4().hex
    with FakeProviderServer(token=token, keep_bodies=False) as fake:
        env = _env(fake, token, CAMPAIGN_BATCH_SIZE="50")
        one = campaign_create(spec(name="one", holdout=0, frequency_cap=1))
        two = campaign_create(spec(name="two", holdout=0, frequency_cap=1))
        # When all three become due at the same moment, on two workers of two processes each
        Customer.objects.filter(id__in=ids).update(country="US")
        membership.segment_refresh(segment)
        campaign_launch(one)
        campaign_launch(two)
        automation_tick_task.delay()
        workers = [worker_start(tmp_path / f"worker{i}.log", concurrency=2, **env) for i in range(2)]
        try:
            def done():
                campaign_pump_task.delay()
                automation_tick_task.delay()
                slots = CapSlot.objects.count()
                open_rows = LedgerEntry.objects.filter(status__in=("sending", "unknown"), campaign__in=[one, two]).exists()
                return slots >= 600 and not open_rows and not AutomationSend.objects.filter(
                    status__in=("sending", "unknown")).exists() and not LedgerEntry.objects.filter(
                    campaign__in=[one, two], status="pending", due_at__lte=timezone.now()).exists() and \
                    AutomationSend.objects.filter(automation=automation).count() == 600 and not \
                    AutomationSend.objects.filter(status="pending", due_at__lte=timezone.now()).exists()
            wait_for(done, timeout=180, interval=1.0, what="every customer to get one message")
        finally:
            for worker in workers:
                _stop(worker)
        received = fake.per_recipient()
    # Then every customer got exactly one message, from whichever sender came first
    assert len(received) == 600
    assert {a: n for a, n in received.items() if n > 1} == {}, "nobody over the cap"
    deferred = LedgerEntry.objects.filter(campaign__in=[one, two], status="pending").count()
    waiting = AutomationSend.objects.filter(automation=automation, status=S.PENDING).count()
    assert deferred + waiting == 2 * 600, "the others wait a week: held, not dropped"
    week = timezone.now() + timedelta(days=6)
    assert not LedgerEntry.objects.filter(campaign__in=[one, two], status="pending", due_at__lt=week).exists()
    assert not AutomationSend.objects.filter(automation=automation, status=S.PENDING, due_at__lt=week).exists()
