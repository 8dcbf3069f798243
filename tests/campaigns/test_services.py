"""campaigns/services.py: create, launch (ledger, arms, experiment), controls, the pump."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import selectors, services
from campaigns.models import Campaign, LedgerEntry
from campaigns.sending import campaign_send
from customers.models import Consent, Customer, Suppression
from experiments.assignment import arm_for
from experiments.models import Exposure
from tests.campaigns.conftest import make_customers, make_segment, spec
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    """Launch queues send tasks on commit; these tests drive sending themselves."""
    monkeypatch.setattr(services, "campaign_wake", lambda *a, **k: None)


def launch(campaign, **kw) -> Campaign:
    result = services.campaign_launch(campaign, **kw)
    result.campaign.refresh_from_db()
    return result.campaign


def test_launch_writes_one_ledger_row_per_member_holdout_rows_included(campaign):
    campaign = launch(campaign)
    counts = selectors.ledger_counts(campaign)
    assert counts[S.PENDING] + counts[S.HELD_OUT] == 200
    assert 5 <= counts[S.HELD_OUT] <= 40  # 10% of 200
    assert campaign.state == Campaign.State.SENDING
    assert LedgerEntry.objects.filter(campaign=campaign, status=S.HELD_OUT, variant__isnull=False).count() == 0


def test_the_audience_leaves_out_suppressed_excluded_withdrawn_and_emailless(segment, customers):
    Suppression.objects.create(customer=customers[0], reason="unsubscribed")
    Suppression.objects.create(customer=customers[1], reason="bounced")
    Consent.objects.create(customer=customers[2], granted=False, recorded_at=timezone.now())
    Customer.objects.filter(id=customers[3].id).update(email="")
    make_segment("vip", customers[4:6])
    campaign = launch(services.campaign_create(spec(exclude_segments=["vip"])))
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


def test_launching_twice_is_refused_and_adds_nothing(campaign):
    launch(campaign)
    with pytest.raises(services.CampaignError, match="only a draft or scheduled"):
        services.campaign_launch(campaign)
    assert LedgerEntry.objects.filter(campaign=campaign).count() == 200


def test_an_attribute_some_members_lack_fails_the_launch_before_any_row(customers, segment, tier_attribute):
    Customer.objects.filter(id__in=[c.id for c in customers[:150]]).update(attributes={"tier": "gold"})
    body = spec()
    body["variants"][1]["subject"] = "For our {{ customer.attributes.tier }} members"
    campaign = services.campaign_create(body)
    with pytest.raises(services.CampaignError) as problem:
        services.campaign_launch(campaign)
    message = str(problem.value)
    assert "variant 'B'" in message and "customer.attributes.tier" in message and "50 audience member" in message
    assert not LedgerEntry.objects.filter(campaign=campaign).exists()
    assert Campaign.objects.get(id=campaign.id).state == Campaign.State.DRAFT


def test_an_attribute_nobody_defined_fails_the_launch(segment):
    body = spec()
    body["variants"][0]["text"] = "{{ customer.attributes.shoe_size | default('?') }}"
    with pytest.raises(services.CampaignError, match="shoe_size, which is not a known attribute"):
        services.campaign_launch(services.campaign_create(body))


def test_a_template_error_is_refused_when_the_campaign_is_created(segment):
    body = spec()
    body["variants"][0]["html"] = "{% if %}"
    with pytest.raises(services.CampaignError, match="variant 'A', html: line 1"):
        services.campaign_create(body)


def test_a_campaign_scheduled_for_later_starts_when_the_pump_finds_it_due(segment):
    later = timezone.now() + timedelta(hours=2)
    campaign = launch(services.campaign_create(spec(send_at=later.isoformat())))
    assert campaign.state == Campaign.State.SCHEDULED and not LedgerEntry.objects.filter(campaign=campaign).exists()
    services.campaign_pump(now=later + timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING and LedgerEntry.objects.filter(campaign=campaign).count() == 200


def test_a_send_time_without_a_time_zone_is_refused(segment):
    with pytest.raises(services.CampaignError, match="needs a time zone"):
        services.campaign_create(spec(send_at="2030-01-01T09:00:00"))


def test_cancel_mid_send_cancels_what_is_still_pending(campaign):
    campaign = launch(campaign)
    campaign_send(campaign.id, batch_size=50, budget_seconds=0.0001)  # one batch, then out of time
    services.campaign_cancel(campaign)
    counts = selectors.ledger_counts(campaign)
    assert counts[S.SENT] == 50 and counts[S.PENDING] == 0 and counts[S.CANCELLED] > 100
    assert campaign_send(campaign.id).claimed == 0


def test_pause_stops_claims_and_resume_goes_on(campaign):
    campaign = launch(campaign)
    services.campaign_pause(campaign)
    assert campaign_send(campaign.id).claimed == 0
    services.campaign_resume(campaign)
    campaign_send(campaign.id)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.COMPLETED
    assert selectors.ledger_counts(campaign)[S.PENDING] == 0


def test_a_recurring_run_adds_only_the_segments_new_members(segment, customers):
    campaign = launch(services.campaign_create(spec(recurrence="0 9 * * 1")))
    assert campaign.periodic_task.enabled and campaign.periodic_task.task == "campaigns.tasks.campaign_run_task"
    campaign_send(campaign.id)
    newcomers = make_customers(5, prefix="new")
    from segments.models import Membership

    Membership.objects.bulk_create([Membership(segment=segment, customer=c, version=1) for c in newcomers])
    added = services.campaign_run_recurring(campaign.id)
    assert added == 5
    assert LedgerEntry.objects.filter(campaign=campaign, run=2).count() == 5
    assert Exposure.objects.filter(experiment=campaign.experiment).count() == 205


def test_preview_renders_a_variant_for_a_customer(campaign, customers):
    message = services.campaign_preview(campaign, "A", customers[0])
    assert message.subject == "Hello Name" and "SPRING20" in message.text


def test_orders_in_the_window_are_attributed_for_every_arm_holdout_included(campaign):
    campaign = launch(campaign)
    held = LedgerEntry.objects.filter(campaign=campaign, status=S.HELD_OUT).first()
    treated = LedgerEntry.objects.filter(campaign=campaign, arm="A").first()
    OrderFactory(customer=held.customer, ordered_at=held.assigned_at + timedelta(days=2))
    OrderFactory(customer=treated.customer, ordered_at=treated.assigned_at + timedelta(days=1))
    OrderFactory(customer=treated.customer, ordered_at=treated.assigned_at + timedelta(days=30))  # too late
    arms = {a["arm"]: a for a in selectors.campaign_arms(campaign)}
    assert arms["holdout"]["conversions"] == 1 and arms["A"]["conversions"] == 1 and arms["B"]["conversions"] == 0
