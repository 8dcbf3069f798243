"""Data the page tests look at: customers, a rule segment, a finished experiment with a clear
effect, and a campaign launched a minute ago (its experiment too early to call)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from customers.models import AttributeDefinition
from experiments.services.reports import report_refresh
from segments.services.membership import segment_create, segment_refresh
from tests.campaigns.conftest import make_customers
from tests.experiments.factories import campaign_experiment, expose, order

# The finished experiment's numbers, chosen so that rounding could contradict itself:
# control 6 of 400 = 1.50%, offer 101 of 2,000 = 5.05% -> +3.55 points, +236.7%.
CONTROL_N, CONTROL_CONVERTED = 400, 6
OFFER_N, OFFER_CONVERTED = 2000, 101


def shop(n: int = 60):
    AttributeDefinition.objects.get_or_create(name="vip", defaults={"type": "boolean"})
    customers = make_customers(n, prefix="shop", country="US")
    for i, c in enumerate(customers):
        c.attributes = {"vip": i % 2 == 0}
        if i >= 40:
            c.country = "FR"
        c.save(update_fields=["attributes", "country"])
    segment = segment_create({"name": "US customers", "rule": {"field": "country", "op": "eq", "value": "US"}})
    segment_refresh(segment)
    return segment


def finished_experiment(name: str = "Spring offer"):
    """A test with a clear, significant lift whose window closed long ago."""
    from experiments.services.exposures import exposures_record
    from tests.factories import OrderFactory

    exp = campaign_experiment(name, arms=(("holdout", 1, True), ("offer", 5, False)), retention_days=[7], attribution_days=7)
    at = timezone.now() - timedelta(days=60)
    rows = []
    made = make_customers(CONTROL_N + OFFER_N, prefix=f"{name[:3].lower()}x")
    for i, c in enumerate(made):
        arm = "holdout" if i < CONTROL_N else "offer"
        rows.append((c.id, arm, at))
    exposures_record(exp, rows)
    buyers = made[:CONTROL_CONVERTED] + made[CONTROL_N:CONTROL_N + OFFER_CONVERTED]
    for c in buyers:
        OrderFactory(customer=c, amount=40, ordered_at=at + timedelta(days=2))
    report_refresh(exp, force=True)
    return exp


def fresh_campaign(segment, name: str = "Weekend treat"):
    """Launched a minute ago: its report exists but nothing can be called yet."""
    campaign = campaign_create({
        "name": name, "segment": segment.name, "holdout": 0.1,
        "variants": [{"name": "A", "subject": "Hi {{ customer.first_name }}", "text": "20% off: {{ offer.code }}"},
                     {"name": "B", "subject": "A treat for you", "text": "20% off: {{ offer.code }}"}],
        "offer": {"name": f"{name}-offer", "discount": "20%", "code": "TREAT20",
                  "landing_url": "https://shop.example.com/treat"},
    })
    campaign = campaign_launch(campaign, now=timezone.now() - timedelta(minutes=2)).campaign
    campaign.refresh_from_db()
    report_refresh(campaign.experiment, force=True)
    return campaign


__all__ = ["shop", "finished_experiment", "fresh_campaign", "expose", "order"]
