"""campaigns/services/lifecycle.py: pause, resume, cancel."""

import pytest

from campaigns import selectors
from campaigns.models import Campaign, LedgerEntry
from campaigns.sending import campaign_send
from campaigns.services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from customers.models import Customer
from experiments.models import Exposure
from tests.campaigns.conftest import launched as launch

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status


def test_cancel_mid_send_cancels_what_is_still_pending(campaign):
    campaign = launch(campaign)
    campaign_send(campaign.id, batch_size=50, budget_seconds=0.0001)  # one batch, then out of time
    campaign_cancel(campaign)
    counts = selectors.ledger_counts(campaign)
    assert counts[S.SENT] == 50 and counts[S.PENDING] == 0 and counts[S.CANCELLED] > 100
    assert campaign_send(campaign.id).claimed == 0


def test_pause_stops_claims_and_resume_goes_on(campaign):
    campaign = launch(campaign)
    campaign_pause(campaign)
    assert campaign_send(campaign.id).claimed == 0
    campaign_resume(campaign)
    campaign_send(campaign.id)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.COMPLETED
    assert selectors.ledger_counts(campaign)[S.PENDING] == 0


def test_a_row_whose_customer_is_gone_is_cancelled_and_the_campaign_completes(campaign):
    # The ledger has no database constraint on customer: a customer deleted while its
    # launch ran leaves a row no claim can take (it joins the customer).
    campaign = launch(campaign)
    orphan = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).order_by("id").first()
    missing = Customer.objects.order_by("-id").values_list("id", flat=True).first() + 1000
    LedgerEntry.objects.filter(id=orphan.id).update(customer_id=missing)
    campaign_send(campaign.id)
    campaign.refresh_from_db()
    orphan.refresh_from_db()
    assert campaign.state == Campaign.State.COMPLETED
    assert (orphan.status, orphan.error) == (S.CANCELLED, "the customer was deleted before the send")
    assert LedgerEntry.objects.filter(campaign=campaign, status=S.CANCELLED).count() == 1


def test_deleting_a_customer_deletes_their_ledger_rows_and_exposures(campaign):
    campaign = launch(campaign)
    row = LedgerEntry.objects.filter(campaign=campaign).order_by("id").first()
    assert Exposure.objects.filter(customer_id=row.customer_id).exists()
    Customer.objects.filter(id=row.customer_id).delete()
    assert not LedgerEntry.objects.filter(customer_id=row.customer_id).exists()
    assert not Exposure.objects.filter(customer_id=row.customer_id).exists()


def test_deleting_a_campaign_and_its_experiment_deletes_their_ledger_rows_and_exposures(campaign):
    # The ledger's campaign and variant keys and the exposures' experiment and arm keys have
    # no database constraint (a check per recipient at launch): the ORM's cascade is what
    # keeps them whole.
    from experiments.services.definitions import experiment_delete

    campaign = launch(campaign)
    experiment, variant_ids = campaign.experiment, list(campaign.variants.values_list("id", flat=True))
    arm_ids = list(experiment.arms.values_list("id", flat=True))
    assert LedgerEntry.objects.filter(variant_id__in=variant_ids).exists()
    assert Exposure.objects.filter(experiment=experiment).exists()
    campaign.delete()
    assert not LedgerEntry.objects.filter(campaign_id=campaign.id).exists()
    assert not LedgerEntry.objects.filter(variant_id__in=variant_ids).exists()
    experiment_delete(experiment)
    assert not Exposure.objects.filter(experiment_id=experiment.id).exists()
    assert not Exposure.objects.filter(arm_id__in=arm_ids).exists()
