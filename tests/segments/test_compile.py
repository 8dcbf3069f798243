"""segments/compile.py: every operator and type compiles to one ORM query that selects
exactly the right customers, on PostgreSQL and SQLite."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.features import customer_features
from customers.models import AttributeDefinition, Customer
from segments import rules
from segments.models import Membership, ModelScore, Segment, SegmentModel
from segments.compile import rule_q
from segments.selectors import field_registry
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def rule_compile(rule, *, now=NOW, segment_id=None):
    return rule_q(rules.rule_validate(rule, field_registry(), self_id=segment_id), now=now)


def members(rule, *, now=NOW, segment_id=None) -> set[str]:
    q = rule_compile(rule, now=now, segment_id=segment_id)
    return set(Customer.objects.filter(q).values_list("external_id", flat=True))


def cond(field, op, value=None, **extra):
    out = {"field": field, "op": op, **extra}
    if value is not None:
        out["value"] = value
    return out


@pytest.fixture
def people():
    for name, kind in (("plan", "text"), ("seats", "integer"), ("score", "number"), ("vip", "boolean"),
                       ("renewal", "date")):
        AttributeDefinition.objects.create(name=name, type=kind)
    CustomerFactory(external_id="ann", country="US", name="Ann Lee", signup_date=date(2024, 1, 10),
                    attributes={"plan": "pro", "seats": 5, "score": 2.5, "vip": True, "renewal": "2024-03-01"})
    CustomerFactory(external_id="bob", country="GB", name="Bob Ray", signup_date=date(2024, 6, 1),
                    attributes={"plan": "basic", "seats": 1, "score": 0.5, "vip": False, "renewal": "2025-01-15"})
    CustomerFactory(external_id="cat", country="", name="Cat Vu", signup_date=None,
                    attributes={"plan": "Pro team", "seats": 12})
    CustomerFactory(external_id="dan", country="DE", name="dan", signup_date=date(2023, 12, 31), attributes={})
    return {"ann", "bob", "cat", "dan"}


ALL = {"ann", "bob", "cat", "dan"}


# ------------------------------------------------------------------- customer columns


@pytest.mark.parametrize("rule,expected", [
    (cond("country", "eq", "US"), {"ann"}),
    (cond("country", "ne", "US"), {"bob", "cat", "dan"}),
    (cond("country", "in", ["US", "DE"]), {"ann", "dan"}),
    (cond("country", "not_in", ["US", "DE"]), {"bob", "cat"}),
    (cond("country", "is_null", True), {"cat"}),
    (cond("country", "is_null", False), {"ann", "bob", "dan"}),
    (cond("name", "contains", "RA"), {"bob"}),
    (cond("name", "starts_with", "d"), {"dan"}),
    (cond("signup_date", "eq", "2024-01-10"), {"ann"}),
    (cond("signup_date", "ne", "2024-01-10"), {"bob", "cat", "dan"}),
    (cond("signup_date", "lt", "2024-01-10"), {"dan"}),
    (cond("signup_date", "lte", "2024-01-10"), {"ann", "dan"}),
    (cond("signup_date", "gt", "2024-01-10"), {"bob"}),
    (cond("signup_date", "gte", "2024-01-10"), {"ann", "bob"}),
    (cond("signup_date", "before", "2024-01-01"), {"dan"}),
    (cond("signup_date", "after", "2024-01-10"), {"bob"}),
    (cond("signup_date", "between", ["2024-01-01", "2024-06-01"]), {"ann", "bob"}),
    (cond("signup_date", "is_null", True), {"cat"}),
])
def test_customer_column_operators(people, rule, expected):
    assert members(rule) == expected


def test_within_last_days_on_a_date_column(people):
    recent = CustomerFactory(external_id="new", signup_date=(NOW - timedelta(days=3)).date())
    assert members(cond("signup_date", "within_last_days", 7)) == {recent.external_id}


def test_datetime_column_operators(people):
    Customer.objects.filter(external_id="ann").update(created_at=NOW - timedelta(days=40))
    Customer.objects.filter(external_id="bob").update(created_at=NOW - timedelta(days=2))
    old = (NOW - timedelta(days=10)).isoformat()
    assert members(cond("created_at", "before", old)) == {"ann"}
    assert "bob" in members(cond("created_at", "within_last_days", 5))
    assert "ann" not in members(cond("created_at", "within_last_days", 5))


# ---------------------------------------------------------------------- attributes


@pytest.mark.parametrize("rule,expected", [
    (cond("attributes.plan", "eq", "pro"), {"ann"}),
    (cond("attributes.plan", "ne", "pro"), {"bob", "cat", "dan"}),
    (cond("attributes.plan", "in", ["pro", "basic"]), {"ann", "bob"}),
    (cond("attributes.plan", "not_in", ["pro", "basic"]), {"cat", "dan"}),
    (cond("attributes.plan", "contains", "PRO"), {"ann", "cat"}),
    (cond("attributes.plan", "starts_with", "pro"), {"ann", "cat"}),
    (cond("attributes.plan", "is_null", True), {"dan"}),
    (cond("attributes.seats", "eq", 5), {"ann"}),
    (cond("attributes.seats", "ne", 5), {"bob", "cat", "dan"}),
    (cond("attributes.seats", "gt", 1), {"ann", "cat"}),
    (cond("attributes.seats", "gte", 5), {"ann", "cat"}),
    (cond("attributes.seats", "lt", 5), {"bob"}),
    (cond("attributes.seats", "lte", 5), {"ann", "bob"}),
    (cond("attributes.seats", "between", [2, 12]), {"ann", "cat"}),
    (cond("attributes.seats", "in", [1, 12]), {"bob", "cat"}),
    (cond("attributes.seats", "not_in", [1, 12]), {"ann", "dan"}),
    (cond("attributes.seats", "is_null", False), {"ann", "bob", "cat"}),
    (cond("attributes.score", "gt", 1.0), {"ann"}),
    (cond("attributes.score", "between", [0.5, 2.5]), {"ann", "bob"}),
    (cond("attributes.vip", "eq", True), {"ann"}),
    (cond("attributes.vip", "eq", False), {"bob"}),
    (cond("attributes.vip", "ne", True), {"bob", "cat", "dan"}),
    (cond("attributes.vip", "is_null", True), {"cat", "dan"}),
    (cond("attributes.renewal", "before", "2024-06-01"), {"ann"}),
    (cond("attributes.renewal", "after", "2024-06-01"), {"bob"}),
    (cond("attributes.renewal", "between", ["2024-01-01", "2025-12-31"]), {"ann", "bob"}),
    (cond("attributes.renewal", "eq", "2025-01-15"), {"bob"}),
])
def test_attribute_operators(people, rule, expected):
    assert members(rule) == expected


def test_date_attribute_within_last_days(people):
    CustomerFactory(external_id="soon", attributes={"renewal": (NOW - timedelta(days=2)).date().isoformat()})
    assert members(cond("attributes.renewal", "within_last_days", 10)) == {"soon"}


# ---------------------------------------------------------------------- groups, not


def test_groups_nest_and_negate(people):
    rule = {"any": [
        {"all": [cond("country", "in", ["US", "GB"]), cond("attributes.seats", "gte", 2)]},
        {"not": {"any": [cond("attributes.plan", "is_null", False), cond("country", "eq", "US")]}},
    ]}
    assert members(rule) == {"ann", "dan"}


def test_not_is_the_exact_complement_even_with_missing_values(people):
    for rule in (cond("attributes.seats", "gt", 1), cond("attributes.vip", "eq", False),
                 cond("signup_date", "lt", "2024-05-01"), cond("country", "eq", "GB")):
        inside, outside = members(rule), members({"not": rule})
        assert inside | outside == ALL and not inside & outside, rule


def test_empty_groups(people):
    assert members({"all": []}) == ALL
    assert members({"any": []}) == set()


def test_whole_tree_is_one_query(people):
    rule = {"all": [cond("country", "ne", "FR"), cond("frequency", "gte", 2), cond("recency_days", "lt", 30),
                    {"not": cond("events_in_last_days", "gte", 1, args={"kind": "visit", "days": 30})}]}
    q = rule_compile(rule, now=NOW)
    with CaptureQueriesContext(connection) as queries:
        list(Customer.objects.filter(q).values_list("id", flat=True))
    assert len(queries) == 1


# --------------------------------------------------------------------------- features


@pytest.fixture
def history(people):
    ann, bob, cat = (Customer.objects.get(external_id=x) for x in ("ann", "bob", "cat"))
    for days, amount in ((5, 100), (40, 50), (200, 30)):
        OrderFactory(customer=ann, ordered_at=NOW - timedelta(days=days), amount=amount)
    OrderFactory(customer=bob, ordered_at=NOW - timedelta(days=100), amount=20)
    OrderFactory(customer=bob, ordered_at=NOW + timedelta(days=1), amount=999)  # in the future: ignored
    OrderFactory(customer=cat, ordered_at=NOW - timedelta(days=400), amount=10)
    for days in (1, 2, 50):
        EventFactory(customer=ann, kind="visit", occurred_at=NOW - timedelta(days=days))
    EventFactory(customer=bob, kind="support_ticket", occurred_at=NOW - timedelta(days=3))
    return None


@pytest.mark.parametrize("rule,expected", [
    (cond("frequency", "eq", 0), {"dan"}),
    (cond("frequency", "gte", 1), {"ann", "bob", "cat"}),
    (cond("frequency", "gt", 1), {"ann"}),
    (cond("frequency", "lt", 3), {"bob", "cat", "dan"}),
    (cond("frequency", "in", [0, 3]), {"ann", "dan"}),
    (cond("frequency", "not_in", [0, 3]), {"bob", "cat"}),
    (cond("frequency", "between", [1, 2]), {"bob", "cat"}),
    (cond("frequency", "ne", 1), {"ann", "dan"}),
    (cond("monetary", "gt", 25), {"ann"}),
    (cond("monetary", "lte", 20), {"bob", "cat", "dan"}),
    (cond("monetary", "between", [10, 20]), {"bob", "cat"}),
    (cond("recency_days", "lt", 10), {"ann"}),
    (cond("recency_days", "lte", 100), {"ann", "bob"}),
    (cond("recency_days", "gt", 100), {"cat"}),
    (cond("recency_days", "gte", 100), {"bob", "cat"}),
    (cond("recency_days", "between", [30, 365]), {"bob"}),
    (cond("recency_days", "is_null", True), {"dan"}),
    (cond("orders_in_last_days", "gte", 2, args={"days": 60}), {"ann"}),
    (cond("orders_in_last_days", "eq", 0, args={"days": 60}), {"bob", "cat", "dan"}),
    (cond("orders_in_last_days", "lt", 2, args={"days": 365}), {"bob", "cat", "dan"}),
    (cond("spend_in_last_days", "gte", 100, args={"days": 60}), {"ann"}),
    (cond("spend_in_last_days", "lt", 100, args={"days": 60}), {"bob", "cat", "dan"}),
    (cond("events_in_last_days", "gte", 2, args={"kind": "visit", "days": 7}), {"ann"}),
    (cond("events_in_last_days", "gte", 1, args={"kind": "support_ticket", "days": 7}), {"bob"}),
    (cond("events_in_last_days", "eq", 0, args={"kind": "support_ticket", "days": 7}), {"ann", "cat", "dan"}),
    (cond("tenure_days", "is_null", True), set()),
])
def test_feature_operators(history, rule, expected):
    assert members(rule) == expected


def test_tenure_falls_back_to_the_first_order_without_a_signup_date(history):
    # cat has no signup date; her first order was 400 days ago.
    assert "cat" in members(cond("tenure_days", "gt", 399))
    assert "cat" not in members(cond("tenure_days", "gt", 401))
    assert members(cond("tenure_days", "is_null", True)) == set()
    Customer.objects.filter(external_id="dan").update(signup_date=None)
    assert members(cond("tenure_days", "is_null", True)) == {"dan"}


def test_features_agree_with_customer_features_on_random_data():
    """The SQL of a rule and the feature frame a model trains on say the same thing."""
    rng = random.Random(3)
    for i in range(60):
        customer = CustomerFactory(
            external_id=f"r{i}",
            signup_date=None if i % 7 == 0 else (NOW - timedelta(days=rng.randint(0, 900))).date())
        for _ in range(rng.choice([0, 0, 1, 2, 3, 6])):
            OrderFactory(customer=customer, ordered_at=NOW - timedelta(days=rng.uniform(0, 500)),
                         amount=Decimal(rng.randint(5, 300)))
        for _ in range(rng.choice([0, 1, 4])):
            EventFactory(customer=customer, kind=rng.choice(["visit", "support_ticket"]),
                         occurred_at=NOW - timedelta(days=rng.uniform(0, 120), seconds=rng.randint(0, 10**6)))
    frame = customer_features(NOW)
    ids = dict(Customer.objects.values_list("id", "external_id"))
    frame.index = frame.index.map(ids)
    checks = [
        ("recency_days", "lt", 45, lambda f: f.recency_days < 45),
        ("recency_days", "gte", 200, lambda f: f.recency_days >= 200),
        ("recency_days", "between", [10, 90], lambda f: f.recency_days.between(10, 90)),
        ("frequency", "gte", 2, lambda f: f.frequency >= 2),
        ("frequency", "lte", 1, lambda f: f.frequency <= 1),
        ("monetary", "gt", 250, lambda f: f.monetary > 250),
        ("tenure_days", "gt", 300, lambda f: f.tenure_days > 300),
        ("tenure_days", "lte", 120, lambda f: f.tenure_days <= 120),
        ("orders_in_last_days", "gte", 1, lambda f: f.orders_30d >= 1, {"days": 30}),
        ("orders_in_last_days", "lt", 2, lambda f: f.orders_90d < 2, {"days": 90}),
        ("spend_in_last_days", "gte", 100, lambda f: f.spend_90d >= 100, {"days": 90}),
        ("events_in_last_days", "gte", 1, lambda f: f.events_support_ticket_90d >= 1,
         {"kind": "support_ticket", "days": 90}),
        ("events_in_last_days", "eq", 0, lambda f: f.events_visit_30d == 0, {"kind": "visit", "days": 30}),
    ]
    for field, op, value, expected, *args in checks:
        rule = cond(field, op, value, **({"args": args[0]} if args else {}))
        want = set(frame.index[expected(frame).fillna(False).astype(bool)])
        assert members(rule) == want, rule


# ----------------------------------------------------------------- models, segments


@pytest.fixture
def scored(people):
    model = SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"", scored_at=NOW)
    clusters = SegmentModel.objects.create(name="clusters", kind="kmeans", pipeline=b"", scored_at=NOW)
    by_name = dict(Customer.objects.values_list("external_id", "id"))
    for name, score in (("ann", 0.9), ("bob", 0.2), ("cat", 0.5)):
        ModelScore.objects.create(model=model, customer_id=by_name[name], score=score)
    for name, label in (("ann", "0"), ("bob", "1"), ("cat", "1"), ("dan", "2")):
        ModelScore.objects.create(model=clusters, customer_id=by_name[name], score=1.0, label=label)
    return model


def test_model_score_and_label_conditions(scored):
    assert members(cond("model_score", "gte", 0.5, args={"model": "churn"})) == {"ann", "cat"}
    assert members(cond("model_score", "lt", 0.5, args={"model": "churn"})) == {"bob"}
    assert members(cond("model_score", "between", [0.1, 0.6], args={"model": "churn"})) == {"bob", "cat"}
    assert members(cond("model_score", "is_null", True, args={"model": "churn"})) == {"dan"}
    assert members(cond("model_label", "eq", "1", args={"model": "clusters"})) == {"bob", "cat"}
    assert members(cond("model_label", "not_in", ["1", "2"], args={"model": "clusters"})) == {"ann"}


def test_model_conditions_read_the_newest_scored_version(scored):
    newer = SegmentModel.objects.create(name="churn", kind="propensity", version=2, pipeline=b"", scored_at=NOW)
    ModelScore.objects.create(model=newer, customer=Customer.objects.get(external_id="dan"), score=0.99)
    assert members(cond("model_score", "gte", 0.5, args={"model": "churn"})) == {"dan"}
    SegmentModel.objects.create(name="churn", kind="propensity", version=3, pipeline=b"")  # not scored yet
    assert members(cond("model_score", "gte", 0.5, args={"model": "churn"})) == {"dan"}


def test_segment_membership_reads_the_current_version(people):
    by_name = dict(Customer.objects.values_list("external_id", "id"))
    vip = Segment.objects.create(name="vip", rule={"all": []}, current_version=2)
    Membership.objects.create(segment=vip, version=1, customer_id=by_name["bob"])  # an old version
    Membership.objects.create(segment=vip, version=2, customer_id=by_name["ann"])
    Membership.objects.create(segment=vip, version=2, customer_id=by_name["cat"])
    assert members(cond("segment", "eq", vip.pk)) == {"ann", "cat"}
    assert members(cond("segment", "ne", vip.pk)) == {"bob", "dan"}
    assert members(cond("segment", "not_in", [vip.pk])) == {"bob", "dan"}


def test_a_cycle_through_stored_segments_is_refused(people):
    a = Segment.objects.create(name="a", rule={"all": []})
    b = Segment.objects.create(name="b", rule=cond("segment", "eq", a.pk))
    with pytest.raises(rules.RuleInvalid) as caught:
        rule_compile(cond("segment", "in", [b.pk]), segment_id=a.pk)
    assert caught.value.errors[0].path == "rule.value[0]"
    assert "a -> b -> a" in caught.value.errors[0].message


# ------------------------------------------------------------------------- injection


INJECTION = "x'); DROP TABLE customers_customer; --"


def test_injection_in_a_text_value_is_plain_data(people):
    CustomerFactory(external_id="evil", name=INJECTION, attributes={"plan": INJECTION})
    assert members(cond("name", "eq", INJECTION)) == {"evil"}
    assert members(cond("attributes.plan", "in", [INJECTION, "pro"])) == {"evil", "ann"}
    assert members(cond("name", "contains", "'); DROP")) == {"evil"}
    assert members(cond("name", "contains", "%")) == set()  # LIKE wildcards are escaped
    assert Customer.objects.count() == 5


def test_injection_in_a_field_name_is_refused(people):
    AttributeDefinition.objects.create(name="a", type="text")
    with pytest.raises(rules.RuleInvalid) as caught:
        rule_compile(cond("attributes.a') OR 1=1 --", "eq", "x"))
    assert caught.value.errors[0].path == "rule.field"
    assert "unknown field" in caught.value.errors[0].message


def test_odd_attribute_names_are_bound_as_keys(people):
    """An attribute named like SQL, or like a Django lookup path, is still one JSON key."""
    odd = "a') OR 1=1 --"
    for name in (odd, "plan__contains"):
        AttributeDefinition.objects.create(name=name, type="text")
    CustomerFactory(external_id="odd", attributes={odd: "yes", "plan__contains": "p"})
    assert members(cond(f"attributes.{odd}", "eq", "yes")) == {"odd"}
    assert members(cond(f"attributes.{odd}", "is_null", False)) == {"odd"}
    assert members(cond("attributes.plan__contains", "eq", "p")) == {"odd"}
