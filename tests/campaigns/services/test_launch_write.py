"""campaigns/services/launch_write.py: a large first launch written in ranges on several
connections, against the same launch written in one statement.

The ranges commit on connections of their own, so these tests commit too (transaction=True):
pytest-django's usual test transaction would hide the customers from those connections."""

import pytest
from django.db import connection

from campaigns.errors import CampaignError
from campaigns.models import Campaign, LedgerEntry
from campaigns.services import launch_write
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from core.db import is_postgres
from experiments.assignment import arm_for
from experiments.models import Experiment, Exposure
from experiments.selectors import exposure_span
from segments.models import Segment
from tests.campaigns.conftest import make_customers, make_segment, spec

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not is_postgres(), reason="ranges are PostgreSQL's (SQLite has one writer)"),
]
S = LedgerEntry.Status


@pytest.fixture
def ranged(settings):
    """Every launch of 10 or more members is ranged, in ranges of about 7 rows."""
    settings.CAMPAIGN_LAUNCH_CONNECTIONS = 2
    settings.CAMPAIGN_LAUNCH_RANGED_FROM = 10
    settings.CAMPAIGN_LAUNCH_RANGE_ROWS = 7
    return settings


@pytest.fixture
def members():
    customers = make_customers(120)
    make_segment("everyone", customers)
    return customers


def _launch(name: str = "spring") -> Campaign:
    campaign = campaign_launch(campaign_create(spec(name=name))).campaign
    campaign.refresh_from_db()
    return campaign


def _written(campaign: Campaign) -> tuple[dict[int, str], dict[int, str]]:
    """(customer id -> arm) of the campaign's ledger rows and of its experiment's exposures."""
    ledger = dict(LedgerEntry.objects.filter(campaign=campaign).values_list("customer_id", "arm"))
    exposures = dict(Exposure.objects.filter(experiment=campaign.experiment).values_list("customer_id", "arm__name"))
    return ledger, exposures


def test_a_ranged_launch_writes_what_one_statement_writes(ranged, members):
    assert len(launch_write._ranges(Campaign(segment=Segment.objects.get()), 1)) >= 8  # ranged indeed
    campaign = _launch()
    assert campaign.state == Campaign.State.SENDING and campaign.runs == 1
    ledger, exposures = _written(campaign)
    assert set(ledger) == {c.id for c in members}
    assert exposures == ledger  # one exposure per row, in the row's arm, holdout included
    arms = [(a.name, a.weight) for a in campaign.experiment.arms.order_by("position")]
    assert all(arm == arm_for(campaign.experiment.salt, cid, arms) for cid, arm in ledger.items())
    rows = LedgerEntry.objects.filter(campaign=campaign)
    assert rows.filter(status=S.HELD_OUT).count() == rows.filter(arm="holdout").count() > 0
    assert rows.filter(status=S.PENDING, variant__isnull=True).count() == 0
    assert len(set(rows.values_list("key", flat=True))) == 120
    at = rows.first().assigned_at  # the ranges' connections cannot see the new experiment: the launch keeps its span
    assert exposure_span(campaign.experiment) == (at, at)

    ranged.CAMPAIGN_LAUNCH_CONNECTIONS = 1  # another campaign in one statement: the same members
    again = _launch("spring-again")
    assert not launch_write._ranges(again, 1)
    assert LedgerEntry.objects.filter(campaign=again).count() == 120


def test_a_ranged_launch_leaves_out_the_exclusion_segments_members_in_every_range(ranged, members):
    make_segment("vip", members[::9])  # members spread over every range
    campaign = campaign_launch(campaign_create(spec(exclude_segments=["vip"]))).campaign
    ledger, exposures = _written(campaign)
    assert set(ledger) == {c.id for c in members} - {c.id for c in members[::9]}
    assert exposures == ledger


def test_a_range_that_fails_leaves_nothing_behind_and_the_launch_can_be_retried(ranged, members, monkeypatch):
    execute = launch_write._execute
    calls = []

    def third_fails(sql, params):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return execute(sql, params)

    monkeypatch.setattr(launch_write, "_execute", third_fails)
    draft = campaign_create(spec())
    with pytest.raises(RuntimeError):
        campaign_launch(draft)
    draft.refresh_from_db()
    assert (draft.state, draft.runs, draft.experiment_id) == (Campaign.State.DRAFT, 0, None)
    assert not LedgerEntry.objects.exists()  # the ranges that had committed were deleted
    assert not Exposure.objects.exists()
    assert not Experiment.objects.exists()

    monkeypatch.setattr(launch_write, "_execute", execute)
    campaign_launch(draft)
    ledger, exposures = _written(Campaign.objects.get(id=draft.id))
    assert len(ledger) == 120 and exposures == ledger


def test_rows_of_a_launch_killed_midway_are_deleted_by_the_next_attempt(ranged, members):
    draft = campaign_create(spec())
    # What a launch killed after some ranges committed leaves: ledger rows of run 1 of a
    # campaign still at runs == 0, and exposures in an experiment that never committed.
    gone = (Experiment.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000
    with connection.cursor() as cursor:
        for customer in members[:5]:
            cursor.execute(
                f"INSERT INTO {LedgerEntry._meta.db_table} (campaign_id, customer_id, arm, email, status, run, "
                "assigned_at, due_at, attempts, retries, batch, key, provider, provider_message_id, offer_code, error, "
                "updated_at) VALUES (%s, %s, 'A', 'x@example.com', 'pending', 1, now(), now(), 0, 0, '', %s, '', '', "
                "'', '', now())", [draft.id, customer.id, f"stale{customer.id}"])
            cursor.execute(
                f"INSERT INTO {Exposure._meta.db_table} (experiment_id, arm_id, unit, customer_id, exposed_at, "
                "attributes, outcomes) VALUES (%s, %s, %s, %s, now(), '{}', '{}')",
                [gone, gone, str(customer.id), customer.id])
    kept = campaign_create(spec(name="other"))
    campaign_launch(kept)  # another campaign's rows and exposures are not leftovers

    campaign_launch(draft)
    ledger, exposures = _written(Campaign.objects.get(id=draft.id))
    assert len(ledger) == 120 and exposures == ledger
    assert not LedgerEntry.objects.filter(key__startswith="stale").exists()
    assert not Exposure.objects.filter(experiment_id=gone).exists()
    assert Exposure.objects.filter(experiment=Campaign.objects.get(id=kept.id).experiment).count() == 120


def test_a_launch_that_fails_its_checks_writes_no_range(ranged, members):
    draft = campaign_create(spec())
    draft.variants.filter(name="A").update(subject="{{ customer.attributes.nobody }}")
    with pytest.raises(CampaignError):
        campaign_launch(draft)
    assert not LedgerEntry.objects.exists() and not Exposure.objects.exists()
