"""segments/migration.py: migration matrix, customer history, at-risk lists."""

from __future__ import annotations

import pytest
from django.utils import timezone

from customers.models import AttributeDefinition, Customer
from segments import migration
from segments.models import ModelScore, SegmentModel
from segments.services import membership
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers():
    """Three rule segments of one family, ranked gold (best) > silver > bronze by spend."""
    AttributeDefinition.objects.create(name="spend", type="number")
    for i, spend in enumerate([500, 400, 150, 120, 100, 20, 10, 5]):
        CustomerFactory(external_id=f"t{i}", attributes={"spend": spend})
    specs = [("gold", 0, [300, 10_000]), ("silver", 1, [100, 299.99]), ("bronze", 2, [0, 99.99])]
    segments = {}
    for name, rank, band in specs:
        segments[name] = membership.segment_create({
            "name": name, "family": "tiers", "rank": rank,
            "rule": {"field": "attributes.spend", "op": "between", "value": band}})
    membership.segment_refresh(segments["gold"])
    return segments


def move(external_id: str, spend: float) -> None:
    customer = Customer.objects.get(external_id=external_id)
    customer.attributes = {"spend": spend}
    customer.save()


def test_migration_matrix_between_two_refreshes(tiers):
    move("t0", 200)  # gold -> silver
    move("t2", 50)  # silver -> bronze
    move("t5", 350)  # bronze -> gold
    Customer.objects.get(external_id="t7").delete()  # leaves
    CustomerFactory(external_id="t8", attributes={"spend": 120})  # enters silver
    membership.segment_refresh(tiers["silver"])
    result = migration.family_migration("tiers")
    assert (result["old_version"], result["new_version"]) == (1, 2)
    g, s, b = (tiers[n].pk for n in ("gold", "silver", "bronze"))
    cells = {(r["from"], r["to"]): r["customers"] for r in result["matrix"]}
    assert cells == {(g, g): 1, (g, s): 1, (s, s): 2, (s, b): 1, (b, g): 1, (b, b): 1, (None, s): 1}
    # t7 was deleted, so its old membership went with it (cascade): nobody "left" here.
    assert result["stayed"] == 4 and result["moved"] == 3 and result["entered"] == 1


def test_migration_counts_customers_who_left_the_family(tiers):
    customer = Customer.objects.get(external_id="t6")
    customer.attributes = {}
    customer.save()
    membership.segment_refresh(tiers["gold"])
    result = migration.family_migration("tiers")
    assert {(r["from"], r["to"]): r["customers"] for r in result["matrix"]}[(tiers["bronze"].pk, None)] == 1
    assert result["left"] == 1


def test_customer_history_lists_each_kept_refresh(tiers):
    move("t0", 200)
    membership.segment_refresh(tiers["gold"])
    move("t0", 10)
    membership.segment_refresh(tiers["gold"])
    customer = Customer.objects.get(external_id="t0")
    history = migration.customer_family_history(customer.pk, "tiers")
    assert [(h["version"], h["segment_name"]) for h in history] == [(1, "gold"), (2, "silver"), (3, "bronze")]
    assert all(h["refreshed_at"] is not None for h in history)


def test_at_risk_lists_customers_who_moved_down_worst_first(tiers):
    move("t0", 10)  # gold -> bronze: two ranks down
    move("t2", 50)  # silver -> bronze: one rank down
    move("t6", 450)  # bronze -> gold: up, not at risk
    membership.segment_refresh(tiers["gold"])
    result = migration.family_at_risk("tiers")
    moved = [(Customer.objects.get(pk=r["customer"]).external_id, r["ranks_down"]) for r in result["moved_down"]]
    assert moved == [("t0", 2), ("t2", 1)]


def test_at_risk_lists_scores_near_the_worse_edge_of_a_band():
    model = SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"", scored_at=timezone.now(),
                                        params={"worse": "higher"})
    for i, score in enumerate([0.05, 0.2, 0.29, 0.31, 0.5, 0.69, 0.71, 0.95]):
        ModelScore.objects.create(model=model, customer=CustomerFactory(external_id=f"s{i}"), score=score)
    low = membership.segment_create({"name": "low", "model": model.pk, "below": 0.3, "family": "risk", "rank": 0,
                                   "worse": "higher", "threshold": 0.0})
    membership.segment_create({"name": "mid", "model": model.pk, "threshold": 0.3, "below": 0.7, "family": "risk",
                             "rank": 1, "worse": "higher"})
    membership.segment_create({"name": "high", "model": model.pk, "threshold": 0.7, "family": "risk", "rank": 2,
                             "worse": "higher"})
    membership.segment_refresh(low)
    near = migration.family_at_risk("risk", margin=0.1)["near_boundary"]
    found = {Customer.objects.get(pk=r["customer"]).external_id: r["segment_name"] for r in near}
    # Within 10% of the band width below the edge to the worse band: 0.29 (edge 0.3), 0.69 (edge 0.7).
    assert found == {"s2": "low", "s5": "mid"}
