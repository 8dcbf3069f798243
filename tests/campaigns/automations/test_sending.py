"""campaigns/automations/sending.py (with the triggers, entries and advance services it drives):
segment entry, the holdout, exactly-once steps, exits, `unless`, pause, edit, archive."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.automations.ledger import sends_claim
from campaigns.automations.selectors import automation_status
from campaigns.ledger_rows import ClaimCursor
from campaigns.models import Automation, AutomationEntry, AutomationSend, OutboxMessage
from campaigns.services.automations.create import automation_create
from campaigns.services.automations.tick import automation_tick
from campaigns.services.automations.lifecycle import (
    automation_archive, automation_edit_steps, automation_pause, automation_resume,
)
from core.db import is_postgres
from customers.models import Customer, Order
from segments.services import membership
from tests.campaigns.automations import auto_spec, make_people, run_all, step, us_segment

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = [postgres_only, pytest.mark.django_db]
S = AutomationSend.Status


def unit_hash(text: str) -> float:
    """Independent of the SQL: md5's first 32 bits over 2^32."""
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) / 2**32


def enter(ids: list[int], segment) -> None:
    Customer.objects.filter(id__in=ids).update(country="US")
    membership.segment_refresh(segment)


def test_a_refresh_adding_1000_makes_1000_entries_and_a_second_refresh_none():
    ids = make_people(1200)
    segment = us_segment()
    automation = automation_create(auto_spec())
    enter(ids[:1000], segment)
    run_all()
    assert AutomationEntry.objects.filter(automation=automation).count() == 1000
    membership.segment_refresh(segment)
    run_all()
    assert AutomationEntry.objects.filter(automation=automation).count() == 1000
    # the holdout: decided by a hash of salt and entry key, recomputed here independently
    for entry in AutomationEntry.objects.filter(automation=automation):
        assert entry.held_out == (unit_hash(f"{automation.salt}:{entry.key}") < 0.1)
    status = automation_status(automation)
    assert status["entries"] == 1000 and 60 < status["held_out"] < 140
    assert status["steps"][0]["sent"] == 1000 - status["held_out"]
    assert OutboxMessage.objects.count() == 1000 - status["held_out"]


def test_members_before_the_start_do_not_enter_unless_include_current():
    ids = make_people(50)
    Customer.objects.filter(id__in=ids[:20]).update(country="US")
    us_segment()
    plain = automation_create(auto_spec(name="plain"))
    current = automation_create(auto_spec(name="current", include_current=True, holdout=0))
    run_all()
    assert AutomationEntry.objects.filter(automation=plain).count() == 0
    assert AutomationEntry.objects.filter(automation=current, source="current").count() == 20


def test_three_steps_wait_exit_on_order_and_unless(settings):
    ids = make_people(40)
    segment = us_segment()
    automation = automation_create(auto_spec(holdout=0, steps=[step(0), step(1, unless="ordered"), step(2)],
                                             exit=[]))
    enter(ids[:20], segment)
    run_all()
    assert AutomationSend.objects.filter(step_index=0, status=S.SENT).count() == 20
    assert not AutomationSend.objects.filter(step_index=1).exclude(status=S.PENDING).exists()
    # an order by five entrants: their step 2 (unless ordered) is skipped, step 3 still goes
    for cid in ids[:5]:
        Order.objects.create(external_id=f"o{cid}", customer_id=cid, amount=Decimal("10"), ordered_at=timezone.now())
    AutomationSend.objects.filter(status=S.PENDING).update(due_at=timezone.now())
    run_all()
    assert AutomationSend.objects.filter(step_index=1, status=S.SKIPPED).count() == 5
    assert AutomationSend.objects.filter(step_index=1, status=S.SENT).count() == 15
    step3 = AutomationSend.objects.filter(step_index=2)
    assert step3.count() == 20 and all(s.due_at > timezone.now() + timedelta(hours=1) for s in step3)
    # a second automation exits on order: the five never get its second step
    exiting = automation_create(auto_spec(name="exits", holdout=0, steps=[step(0), step(0)], exit=["ordered"]))
    enter(ids[20:30], segment)
    run_all()
    sends = AutomationSend.objects.filter(automation=exiting)
    assert sends.filter(status=S.SENT).count() == 20  # the ten new entrants, two steps each
    for cid in ids[20:23]:
        Order.objects.create(external_id=f"x{cid}", customer_id=cid, amount=Decimal("5"), ordered_at=timezone.now())
    later = automation_create(auto_spec(name="exits-later", holdout=0, steps=[step(0), step(5)], exit=["ordered"]))
    enter(ids[30:36], segment)
    run_all()
    AutomationSend.objects.filter(automation=later, status=S.PENDING).update(due_at=timezone.now())
    Order.objects.create(external_id="late", customer_id=ids[30], amount=Decimal("5"), ordered_at=timezone.now())
    run_all()
    entry = AutomationEntry.objects.get(automation=later, customer_id=ids[30])
    assert entry.status == AutomationEntry.Status.EXITED and entry.exit_reason == "ordered"
    assert AutomationSend.objects.get(entry=entry, step_index=1).status == S.CANCELLED
    assert automation_status(later)["exits"] == {"ordered": 1}
    assert AutomationSend.objects.filter(automation=later, step_index=1, status=S.SENT).count() == 5


def test_pause_holds_sends_and_an_edit_leaves_entrants_on_their_version():
    ids = make_people(20)
    segment = us_segment()
    automation = automation_create(auto_spec(holdout=0, steps=[step(0, subject="v1 first"), step(0, subject="v1 second")]))
    automation_pause(automation.id)
    enter(ids[:5], segment)
    run_all()
    assert AutomationEntry.objects.filter(automation=automation).count() == 5  # entries recorded while paused
    assert OutboxMessage.objects.count() == 0
    automation_edit_steps(automation.id, [step(0, subject="v2 only")])
    automation_resume(automation.id)
    enter(ids[5:8], segment)
    run_all()
    subjects = sorted(OutboxMessage.objects.values_list("subject", flat=True))
    assert subjects.count("v1 first") == 5 and subjects.count("v1 second") == 5 and subjects.count("v2 only") == 3
    automation_archive(automation.id)
    enter(ids[8:12], segment)
    run_all()
    assert Automation.objects.get(id=automation.id).state == "archived"
    assert AutomationEntry.objects.filter(automation=automation).count() == 8


def test_a_send_due_again_behind_the_loops_cursor_is_still_claimed():
    # The automations' send loop claims after the last row it took (ledger_rows.ClaimCursor),
    # and from the front when nothing is past it.
    ids = make_people(60)
    segment = us_segment()
    automation_create(auto_spec())
    enter(ids, segment)
    automation_tick(wake=False)
    due = AutomationSend.objects.filter(status=S.PENDING).count()
    assert due > 30
    cursor = ClaimCursor()
    first = sends_claim(10, cursor=cursor)[1]
    behind = AutomationSend.objects.get(id=min(r.id for r in first))
    AutomationSend.objects.filter(id=behind.id).update(status=S.PENDING, due_at=behind.due_at - timedelta(minutes=1))
    taken = []
    while rows := sends_claim(7, cursor=cursor)[1]:
        taken += [r.id for r in rows]
    assert taken.count(behind.id) == 1 and taken[-1] == behind.id
    assert len(taken) == due - 10 + 1
    assert not AutomationSend.objects.filter(status=S.PENDING).exists()
