"""segments/selectors.py: preview, field registry, migration matrix, at-risk lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import AttributeDefinition, Customer
from segments import rules, selectors, services
from segments.fields import OPERATORS, OPS_BY_TYPE
from segments.models import ModelScore, Segment, SegmentModel
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db


def country_rule(*countries: str) -> dict:
    return {"field": "country", "op": "in", "value": list(countries)}


# --------------------------------------------------------------------------- preview


@pytest.fixture
def crowd():
    now = timezone.now()
    for i in range(400):
        customer = CustomerFactory(external_id=f"p{i}", country="US" if i % 4 == 0 else "GB")
        if i % 2 == 0:
            OrderFactory(customer=customer, ordered_at=now - timedelta(days=5))


def test_preview_counts_exactly_and_samples_members(crowd):
    result = selectors.segment_preview(country_rule("US"), sample=5)
    assert result["count"] == 100 and result["estimated"] is False and result["total"] == 400
    assert len(result["sample"]) == 5
    assert all(row["country"] == "US" for row in result["sample"])


def test_preview_saves_nothing(crowd):
    selectors.segment_preview(country_rule("US"))
    assert not Segment.objects.exists()


def test_preview_on_a_large_base_estimates_history_rules_from_a_sample(crowd, monkeypatch):
    monkeypatch.setattr(selectors, "PREVIEW_SAMPLE", 200)
    monkeypatch.setattr(selectors, "PREVIEW_BLOCK", 20)
    rule = {"field": "recency_days", "op": "lte", "value": 30}
    result = selectors.segment_preview(rule, exact_max=-1)
    assert result["estimated"] is True
    assert result["sampled"] == 200 and result["total"] == 400
    assert abs(result["count"] - 200) <= max(result["margin"], 1)
    assert all(Customer.objects.get(pk=row["id"]).orders.exists() for row in result["sample"])


def test_preview_of_a_bad_rule_raises_with_paths(crowd):
    with pytest.raises(rules.RuleInvalid) as caught:
        selectors.segment_preview({"all": [{"field": "country", "op": "gt", "value": "US"}]})
    assert caught.value.as_list()[0]["path"] == "rule.all[0].op"


# -------------------------------------------------------------------------- registry


def test_field_registry_lists_types_operators_and_known_values():
    AttributeDefinition.objects.create(name="plan", type="text")
    AttributeDefinition.objects.create(name="vip", type="boolean")
    AttributeDefinition.objects.create(name="seats", type="integer")
    AttributeDefinition.objects.create(name="note", type="text")
    for i in range(60):
        CustomerFactory(country="US" if i % 2 else "DE",
                        attributes={"plan": ["basic", "pro"][i % 2], "seats": i % 3, "note": f"free text {i}"})
    EventFactory(kind="support_ticket")
    EventFactory(kind="visit")
    described = selectors.field_registry_describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["country"]["values"] == ["DE", "US"]
    assert fields["attributes.plan"] == {
        "name": "attributes.plan", "label": "plan", "type": "text", "source": "attribute",
        "operators": list(OPS_BY_TYPE["text"]), "values": ["basic", "pro"]}
    assert fields["attributes.vip"]["values"] == [False, True]
    assert fields["attributes.seats"]["values"] == [0, 1, 2]
    assert "values" not in fields["attributes.note"]  # too many to list
    assert fields["events_in_last_days"]["values"] == ["support_ticket", "visit"]
    assert fields["events_in_last_days"]["args"]["days"]["max"] == 3650
    assert fields["recency_days"]["operators"] == ["lt", "lte", "gt", "gte", "between", "is_null"]
    assert set(described["operators"]) == set(OPERATORS)
    assert described["types"]["boolean"] == ["eq", "ne", "is_null"]


def test_field_registry_lists_scored_models_and_segments():
    SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"", scored_at=timezone.now())
    SegmentModel.objects.create(name="draft", kind="propensity", pipeline=b"")  # not scored: not offered
    segment = Segment.objects.create(name="vip", rule={"all": []})
    described = selectors.field_registry_describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["model_score"]["args"]["model"]["choices"] == ["churn"]
    assert [m["name"] for m in described["models"]] == ["churn"]
    assert described["segments"] == [{"id": segment.pk, "name": "vip"}]


# ------------------------------------------------------------------------- migration


@pytest.fixture
def tiers():
    """Three rule segments of one family, ranked gold (best) > silver > bronze by spend."""
    AttributeDefinition.objects.create(name="spend", type="number")
    for i, spend in enumerate([500, 400, 150, 120, 100, 20, 10, 5]):
        CustomerFactory(external_id=f"t{i}", attributes={"spend": spend})
    specs = [("gold", 0, [300, 10_000]), ("silver", 1, [100, 299.99]), ("bronze", 2, [0, 99.99])]
    segments = {}
    for name, rank, band in specs:
        segments[name] = services.segment_create({
            "name": name, "family": "tiers", "rank": rank,
            "rule": {"field": "attributes.spend", "op": "between", "value": band}})
    services.segment_refresh(segments["gold"])
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
    services.segment_refresh(tiers["silver"])
    result = selectors.family_migration("tiers")
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
    services.segment_refresh(tiers["gold"])
    result = selectors.family_migration("tiers")
    assert {(r["from"], r["to"]): r["customers"] for r in result["matrix"]}[(tiers["bronze"].pk, None)] == 1
    assert result["left"] == 1


def test_customer_history_lists_each_kept_refresh(tiers):
    move("t0", 200)
    services.segment_refresh(tiers["gold"])
    move("t0", 10)
    services.segment_refresh(tiers["gold"])
    customer = Customer.objects.get(external_id="t0")
    history = selectors.customer_family_history(customer.pk, "tiers")
    assert [(h["version"], h["segment_name"]) for h in history] == [(1, "gold"), (2, "silver"), (3, "bronze")]
    assert all(h["refreshed_at"] is not None for h in history)


def test_at_risk_lists_customers_who_moved_down_worst_first(tiers):
    move("t0", 10)  # gold -> bronze: two ranks down
    move("t2", 50)  # silver -> bronze: one rank down
    move("t6", 450)  # bronze -> gold: up, not at risk
    services.segment_refresh(tiers["gold"])
    result = selectors.family_at_risk("tiers")
    moved = [(Customer.objects.get(pk=r["customer"]).external_id, r["ranks_down"]) for r in result["moved_down"]]
    assert moved == [("t0", 2), ("t2", 1)]


def test_at_risk_lists_scores_near_the_worse_edge_of_a_band():
    model = SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"", scored_at=timezone.now(),
                                        params={"worse": "higher"})
    for i, score in enumerate([0.05, 0.2, 0.29, 0.31, 0.5, 0.69, 0.71, 0.95]):
        ModelScore.objects.create(model=model, customer=CustomerFactory(external_id=f"s{i}"), score=score)
    low = services.segment_create({"name": "low", "model": model.pk, "below": 0.3, "family": "risk", "rank": 0,
                                   "worse": "higher", "threshold": 0.0})
    services.segment_create({"name": "mid", "model": model.pk, "threshold": 0.3, "below": 0.7, "family": "risk",
                             "rank": 1, "worse": "higher"})
    services.segment_create({"name": "high", "model": model.pk, "threshold": 0.7, "family": "risk", "rank": 2,
                             "worse": "higher"})
    services.segment_refresh(low)
    near = selectors.family_at_risk("risk", margin=0.1)["near_boundary"]
    found = {Customer.objects.get(pk=r["customer"]).external_id: r["segment_name"] for r in near}
    # Within 10% of the band width below the edge to the worse band: 0.29 (edge 0.3), 0.69 (edge 0.7).
    assert found == {"s2": "low", "s5": "mid"}
