"""campaigns/services/automations/entries.py: the rows a trigger writes, each decision
recomputed here without the SQL (holdout, variant by weight, the send's key)."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.utils import timezone

from campaigns.models import AutomationEntry, AutomationSend, AutomationStep
from campaigns.selectors import unsubscribe_find
from campaigns.services.automations.create import automation_create
from campaigns.services.automations.triggers import automation_read_triggers
from campaigns.unsubscribe import unsubscribe_token
from core.db import is_postgres
from customers.models import Customer
from segments.services import membership
from tests.campaigns.automations import TEXT, auto_spec, make_people, run_all, us_segment

pytestmark = [pytest.mark.skipif(not is_postgres(), reason="automations need PostgreSQL"), pytest.mark.django_db]
WEIGHTS = {"a": 1.0, "b": 2.0, "c": 3.0}


def unit_hash(text: str) -> float:
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) / 2**32


def expected_variant(names_weights: list[tuple[str, float]], u: float) -> str:
    """The first variant whose cumulative share of the weights is above u."""
    total = sum(w for _, w in names_weights)
    running = 0.0
    for name, weight in names_weights:
        running += weight
        if u < running / total:
            return name
    return names_weights[-1][0]


def weighted_step(wait_hours: float = 0) -> dict:
    return {"wait_hours": wait_hours,
            "variants": [{"name": n, "subject": f"S {n}", "text": TEXT, "weight": w} for n, w in WEIGHTS.items()]}


def test_first_and_next_step_variants_follow_the_weights_by_the_entry_hash():
    ids = make_people(900)
    segment = us_segment()
    automation = automation_create(auto_spec(holdout=0.2, steps=[weighted_step(), weighted_step()], exit=[]))
    Customer.objects.filter(id__in=ids[:600]).update(country="US")
    membership.segment_refresh(segment)
    run_all()
    entries = {e.id: e for e in AutomationEntry.objects.filter(automation=automation)}
    assert len(entries) == 600
    for entry in entries.values():
        assert entry.held_out == (unit_hash(f"{automation.salt}:{entry.key}") < 0.2)
    sends = list(AutomationSend.objects.filter(automation=automation).select_related("variant"))
    treated = sum(not e.held_out for e in entries.values())
    assert len(sends) == 2 * treated and 60 < 600 - treated < 180
    counts = {n: 0 for n in WEIGHTS}
    for send in sends:
        entry = entries[send.entry_id]
        u = unit_hash(f"{automation.salt}:{entry.key}:{send.step_index}")
        assert send.variant.name == expected_variant(list(WEIGHTS.items()), u), (send.step_index, u)
        assert send.variant.step_id == AutomationStep.objects.get(version=entry.version_id, index=send.step_index).id
        counts[send.variant.name] += 1
    # 1:2:3 of 2 x ~480 sends
    assert counts["a"] < counts["b"] < counts["c"]


def test_send_keys_start_with_the_row_id_are_unique_and_unsubscribe_their_customer():
    ids = make_people(60)
    segment = us_segment()
    automation = automation_create(auto_spec(holdout=0))
    Customer.objects.filter(id__in=ids[:50]).update(country="US")
    membership.segment_refresh(segment)
    read = automation_read_triggers(automation.id, now=timezone.now())
    assert read == {"entries": 50, "held_out": 0}
    sends = list(AutomationSend.objects.filter(automation=automation))
    assert len({s.key for s in sends}) == 50
    for send in sends:
        assert re.fullmatch(r"[0-9a-f]{32}", send.key)
        assert int(send.key[:16], 16) == send.id
        found = unsubscribe_find(unsubscribe_token(send.key))
        assert isinstance(found, AutomationSend) and found.customer_id == send.customer_id
    # a second read of the same refresh writes nothing
    assert automation_read_triggers(automation.id, now=timezone.now()) == {"entries": 0, "held_out": 0}
