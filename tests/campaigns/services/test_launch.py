"""campaigns/services/launch.py: the ledger, arms, the experiment, checks, recurring runs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import selectors
from campaigns.errors import CampaignError
from campaigns.models import HOLDOUT_ARM, Campaign, LedgerEntry
from campaigns.sending import campaign_send
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch, campaign_run_recurring
from campaigns.services.launch_write import _arm_sql
from core import db
from customers.models import Consent, Customer, Suppression
from experiments.assignment import arm_for, key_bounds
from experiments.models import Exposure
from experiments.selectors import exposure_span
from segments.models import Membership
from tests.campaigns.conftest import launched as launch, make_customers, make_segment, spec
from tests.dbstats import planned_rows

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status


def test_launch_writes_one_ledger_row_per_member_holdout_rows_included(campaign):
    campaign = launch(campaign)
    counts = selectors.ledger_counts(campaign)
    assert counts[S.PENDING] + counts[S.HELD_OUT] == 200
    assert 5 <= counts[S.HELD_OUT] <= 40  # 10% of 200
    assert campaign.state == Campaign.State.SENDING
    assert LedgerEntry.objects.filter(campaign=campaign, status=S.HELD_OUT, variant__isnull=False).count() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner statistics")
def test_a_large_launch_queues_the_analyze_that_counts_its_rows(
    campaign, monkeypatch, django_capture_on_commit_callbacks, statistics_queued
):
    """Claims and the experiment's report are planned after the launch: on its rows. A worker
    analyzes the tables once the launch has committed (core.tasks.statistics_refresh)."""
    from core.tasks import statistics_refresh_task

    monkeypatch.setattr(db, "STATISTICS_REFRESH_ROWS", 100)
    queued = statistics_queued
    with django_capture_on_commit_callbacks(execute=True):
        launch(campaign)
    assert queued == [("core.tasks.statistics_refresh", (["campaigns.LedgerEntry", "experiments.Exposure"], 200))]
    assert statistics_refresh_task(*queued[0][1]) is True  # as the worker runs it
    for model in (LedgerEntry, Exposure):
        assert planned_rows(model) == 200, model


def test_the_audience_leaves_out_suppressed_excluded_withdrawn_and_emailless(segment, customers):
    Suppression.objects.create(customer=customers[0], reason="unsubscribed")
    Suppression.objects.create(customer=customers[1], reason="bounced")
    Consent.objects.create(customer=customers[2], granted=False, recorded_at=timezone.now())
    Customer.objects.filter(id=customers[3].id).update(email="")
    make_segment("vip", customers[4:6])
    campaign = launch(campaign_create(spec(exclude_segments=["vip"])))
    in_ledger = set(LedgerEntry.objects.filter(campaign=campaign).values_list("customer_id", flat=True))
    assert not in_ledger & {c.id for c in customers[:6]}
    assert len(in_ledger) == 194


def test_arms_are_those_of_experiments_arm_for(campaign):
    campaign = launch(campaign)
    experiment = campaign.experiment
    arms = [(a.name, a.weight) for a in experiment.arms.order_by("position")]
    assert [a[0] for a in arms] == ["A", "B", "holdout"]
    for row in LedgerEntry.objects.filter(campaign=campaign):
        assert row.arm == arm_for(experiment.salt, row.customer_id, arms)


@pytest.mark.parametrize("arms", [
    [("A", 1), ("B", 1)],
    [("A", 0.3), ("B", 0.2), ("C", 0.137), (HOLDOUT_ARM, 0.1)],
    [("A", 0.9), (HOLDOUT_ARM, 1e-18)],
])
def test_the_databases_arm_is_arm_fors_for_every_unit(arms):
    # Given the arm number launch computes in SQL (PostgreSQL: SHA-256 in the database;
    # SQLite: the registered Python function), over 20,000 unit ids
    _, bounds = key_bounds(arms)
    hash_sql, params, number = _arm_sql("salt-7f3a", bounds)
    ids = "WITH RECURSIVE ids(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM ids WHERE id < 20000) SELECT id FROM ids"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.id, {number} FROM (SELECT a.id, {hash_sql} AS h FROM ({ids}) a) s ORDER BY s.id", params)
        by_sql = {unit: arms[n - 1][0] for unit, n in cursor.fetchall()}
    # Then every unit is in the arm Python's arm_for gives it
    assert len(by_sql) == 20000
    assert by_sql == {unit: arm_for("salt-7f3a", unit, arms) for unit in range(1, 20001)}
    assert len(set(by_sql.values())) == len(arms) - (arms[-1][1] < 1e-10)


def test_launch_creates_the_experiment_with_exposures_at_assignment_time(campaign):
    campaign = launch(campaign)
    experiment = campaign.experiment
    assert experiment.attribution_days == 7
    assert experiment.metrics.get(is_primary=True).name == "conversion"
    assert experiment.arms.get(is_control=True).name == "holdout"
    exposures = Exposure.objects.filter(experiment=experiment)
    assert exposures.count() == 200
    row = LedgerEntry.objects.filter(campaign=campaign).first()
    exposure = exposures.get(customer_id=row.customer_id)
    assert exposure.arm.name == row.arm and exposure.exposed_at == row.assigned_at
    # The report reads the span of exposure times off the experiment, kept by the launch.
    assert exposure_span(experiment) == (row.assigned_at, row.assigned_at)


def test_launching_twice_is_refused_and_adds_nothing(campaign):
    launch(campaign)
    with pytest.raises(CampaignError, match="only a draft or scheduled"):
        campaign_launch(campaign)
    assert LedgerEntry.objects.filter(campaign=campaign).count() == 200


def test_an_attribute_some_members_lack_fails_the_launch_before_any_row(customers, segment, tier_attribute):
    Customer.objects.filter(id__in=[c.id for c in customers[:150]]).update(attributes={"tier": "gold"})
    body = spec()
    body["variants"][1]["subject"] = "For our {{ customer.attributes.tier }} members"
    campaign = campaign_create(body)
    with pytest.raises(CampaignError) as problem:
        campaign_launch(campaign)
    message = str(problem.value)
    assert "variant 'B'" in message and "customer.attributes.tier" in message and "50 audience member" in message
    assert not LedgerEntry.objects.filter(campaign=campaign).exists()
    assert Campaign.objects.get(id=campaign.id).state == Campaign.State.DRAFT


def test_an_attribute_nobody_defined_fails_the_launch(segment):
    body = spec()
    body["variants"][0]["text"] = "{{ customer.attributes.shoe_size | default('?') }}"
    with pytest.raises(CampaignError, match="shoe_size, which is not a known attribute"):
        campaign_launch(campaign_create(body))


def test_a_recurring_run_adds_only_the_segments_new_members(segment, customers):
    campaign = launch(campaign_create(spec(recurrence="0 9 * * 1")))
    assert campaign.periodic_task.enabled and campaign.periodic_task.task == "campaigns.tasks.campaign_run_task"
    campaign_send(campaign.id)
    newcomers = make_customers(5, prefix="new")
    Membership.objects.bulk_create([Membership(segment=segment, customer=c, version=1) for c in newcomers])
    added = campaign_run_recurring(campaign.id, now=timezone.now() + timedelta(minutes=1))  # the next tick
    assert added == 5
    assert LedgerEntry.objects.filter(campaign=campaign, run=2).count() == 5
    assert Exposure.objects.filter(experiment=campaign.experiment).count() == 205
    first = LedgerEntry.objects.filter(campaign=campaign, run=1).first().assigned_at
    second = LedgerEntry.objects.filter(campaign=campaign, run=2).first().assigned_at
    assert first < second and exposure_span(campaign.experiment) == (first, second)


def test_a_recurring_campaigns_beat_row_carries_its_crontab_and_time_zone(segment):
    campaign = launch(campaign_create(spec(recurrence="30 6 * * 1-5", timezone="Europe/Berlin")))
    crontab = campaign.periodic_task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == ("30", "6", "1-5", "Europe/Berlin")


def test_two_beats_firing_one_tick_run_a_recurring_campaign_once(segment, customers):
    campaign = launch(campaign_create(spec(recurrence="0 9 * * 1")))
    campaign_send(campaign.id)
    newcomers = make_customers(5, prefix="new")
    Membership.objects.bulk_create([Membership(segment=segment, customer=c, version=1) for c in newcomers])
    tick = timezone.now() + timedelta(minutes=1)
    assert campaign_run_recurring(campaign.id, now=tick) == 5
    assert campaign_run_recurring(campaign.id, now=tick + timedelta(seconds=2)) == 0  # the second beat
    campaign.refresh_from_db()
    assert campaign.runs == 2 and campaign.last_error == ""
