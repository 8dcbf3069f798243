"""segments/selectors.py: preview, field registry, lookups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import AttributeDefinition, Customer
from segments import rules, selectors
from segments.fields import OPERATORS, OPS_BY_TYPE
from segments.models import Membership, Segment, SegmentModel
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


def test_preview_on_a_large_base_estimates_a_rule_whose_count_reads_everyone(crowd, monkeypatch):
    monkeypatch.setattr(selectors, "_count_is_cheap", lambda *args: False)  # a full scan, as at 1M
    monkeypatch.setattr(selectors, "PREVIEW_SAMPLE", 200)
    monkeypatch.setattr(selectors, "PREVIEW_BLOCK", 20)
    result = selectors.segment_preview(country_rule("US"), exact_max=-1)
    assert result["estimated"] is True and result["total_estimated"] is True
    assert result["sampled"] == 200 and result["total"] == 400
    assert abs(result["count"] - 100) <= result["margin"]


def test_an_estimate_no_sampled_customer_matches_still_has_a_margin(crowd, monkeypatch):
    monkeypatch.setattr(selectors, "_count_is_cheap", lambda *args: False)
    monkeypatch.setattr(selectors, "PREVIEW_SAMPLE", 200)
    monkeypatch.setattr(selectors, "PREVIEW_BLOCK", 20)
    result = selectors.segment_preview(country_rule("FR"), exact_max=-1)
    # Wilson's 95% upper bound for 0 of 200 is 1.9%: "0, give or take 8" of 400, never "0 +- 0".
    assert result["count"] == 0 and result["estimated"] is True and result["margin"] == 8


def test_wilson_interval_matches_the_published_formula():
    # Newcombe (1998), table I: 81 of 263 -> 0.2553 to 0.3662; 0 of 10 -> 0 to 0.2775.
    low, high = selectors._wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    low, high = selectors._wilson(0, 10)
    assert (low, round(high, 4)) == (0.0, 0.2775)



def test_preview_on_a_large_base_counts_an_indexed_rule_exactly():
    from django.db import connection

    from core.db import is_postgres

    if not is_postgres():
        pytest.skip("the planner's cost decides on PostgreSQL; elsewhere a column rule is counted exactly")
    Customer.objects.bulk_create(
        [Customer(external_id=f"x{i}", email=f"x{i}@example.com", country="US" if i % 3 else "GB") for i in range(5000)]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    picked = {"field": "external_id", "op": "in", "value": ["x7", "x8", "x4999"]}
    exact = selectors.segment_preview(picked, exact_max=1000)
    assert exact["count"] == 3 and exact["estimated"] is False and exact["total_estimated"] is True
    broad = selectors.segment_preview(country_rule("GB"), exact_max=1000)
    assert broad["estimated"] is True


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


def test_field_registry_on_a_large_base_suggests_values_seen_in_a_sample(monkeypatch):
    AttributeDefinition.objects.create(name="plan", type="text")
    for i in range(400):
        CustomerFactory(country=["US", "DE", "FR", "GB"][i % 4], attributes={"plan": ["basic", "pro"][i % 2]})
    monkeypatch.setattr(selectors, "PREVIEW_EXACT_MAX", -1)
    monkeypatch.setattr(selectors, "SUGGEST_SAMPLE", 60)
    monkeypatch.setattr(selectors, "PREVIEW_BLOCK", 20)
    blocks, _ = selectors._sample_blocks(60)
    assert sum(high - low for low, high in blocks) == 60  # three blocks of 20 of the 400 ids
    fields = {f["name"]: f for f in selectors.field_registry_describe()["fields"]}
    assert fields["country"]["values"] == ["DE", "FR", "GB", "US"]
    assert fields["attributes.plan"]["values"] == ["basic", "pro"]


def test_field_registry_lists_scored_models_and_segments():
    SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"", scored_at=timezone.now())
    SegmentModel.objects.create(name="draft", kind="propensity", pipeline=b"")  # not scored: not offered
    segment = Segment.objects.create(name="vip", rule={"all": []})
    described = selectors.field_registry_describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["model_score"]["args"]["model"]["choices"] == ["churn"]
    assert [m["name"] for m in described["models"]] == ["churn"]
    assert described["segments"] == [{"id": segment.pk, "name": "vip"}]



# --------------------------------------------------------------------------- members


def test_segment_customers_in_an_id_range_are_the_members_in_it_once_each():
    people = [CustomerFactory(external_id=f"r{i}") for i in range(10)]
    segment = Segment.objects.create(name="ranged", current_version=2, size=6)
    Membership.objects.bulk_create(
        [Membership(segment=segment, customer=c, version=2) for c in people[:6]]
        + [Membership(segment=segment, customer=c, version=1) for c in people]  # an older version
    )
    lo, hi = people[2].id, people[8].id
    got = list(selectors.segment_customers(segment, (lo, hi)).order_by("id").values_list("id", flat=True))
    assert got == [c.id for c in people[2:6]]
    assert selectors.segment_customers(segment).count() == 6
