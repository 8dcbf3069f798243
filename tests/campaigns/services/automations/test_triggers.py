"""campaigns/services/automations/triggers.py, the segment reader: the entered list a refresh
kept, the diff of two versions for a refresh that kept none, and a pruned refresh skipped."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Automation, AutomationEntry
from campaigns.services.automations.create import automation_create
from campaigns.services.automations.triggers import automation_read_triggers
from core.db import is_postgres
from customers.models import Customer
from segments.models import Entrant, Membership
from segments.services import membership
from tests.campaigns.automations import auto_spec, make_people, us_segment

pytestmark = [pytest.mark.skipif(not is_postgres(), reason="automations need PostgreSQL"), pytest.mark.django_db]


def entered(automation) -> set[int]:
    return set(AutomationEntry.objects.filter(automation=automation).values_list("customer_id", flat=True))


def test_the_reader_takes_the_entered_list_the_refresh_kept():
    ids = make_people(100)
    Customer.objects.filter(id__in=ids[:40]).update(country="US")
    segment = us_segment()
    automation = automation_create(auto_spec())
    Customer.objects.filter(id__in=ids[:10]).update(country="GB")  # left: no entry
    Customer.objects.filter(id__in=ids[40:70]).update(country="US")
    membership.segment_refresh(segment)
    kept = set(Entrant.objects.filter(segment=segment).values_list("customer_id", flat=True))
    assert kept == set(ids[40:70])
    assert automation_read_triggers(automation.id, now=timezone.now())["entries"] == 30
    assert entered(automation) == set(ids[40:70])


def test_a_refresh_that_kept_no_list_is_read_as_the_diff_of_its_versions():
    ids = make_people(100)
    Customer.objects.filter(id__in=ids[:40]).update(country="US")
    segment = us_segment()
    automation = automation_create(auto_spec())
    Customer.objects.filter(id__in=ids[:10]).update(country="GB")
    Customer.objects.filter(id__in=ids[40:70]).update(country="US")
    membership.segment_refresh(segment)
    Entrant.objects.filter(segment=segment).delete()  # as a refresh from before the lists were kept
    assert automation_read_triggers(automation.id, now=timezone.now())["entries"] == 30
    assert entered(automation) == set(ids[40:70])


def test_a_refresh_pruned_before_it_was_read_is_skipped_and_said():
    ids = make_people(60)
    segment = us_segment()
    automation = automation_create(auto_spec())
    Customer.objects.filter(id__in=ids[:20]).update(country="US")
    membership.segment_refresh(segment)
    Customer.objects.filter(id__in=ids[20:30]).update(country="US")
    (refresh,) = membership.segment_refresh(segment)
    Entrant.objects.filter(segment=segment, version=refresh.version).delete()
    Membership.objects.filter(segment=segment, version=refresh.version - 1).delete()
    read = automation_read_triggers(automation.id, now=timezone.now())
    assert read["entries"] == 20  # the first refresh's entrants; the pruned one's are skipped
    assert entered(automation) == set(ids[:20])
    assert "pruned" in Automation.objects.get(id=automation.id).last_error
