"""segments/services/membership.py: create, refresh (versions, history), prune, atomicity."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from core import db
from core.schedules import schedule_describe
from customers.models import AttributeDefinition, Customer
from segments.models import Entrant, Membership, Segment, SegmentRefresh
from segments.selectors import segment_customers
from segments.services import membership, schedules, specs
from tests.factories import CustomerFactory, OrderFactory
from tests.dbstats import planned_rows

pytestmark = pytest.mark.django_db


def country_rule(*countries: str) -> dict:
    return {"field": "country", "op": "in", "value": list(countries)}


@pytest.fixture
def base():
    for i, country in enumerate(["US"] * 4 + ["GB"] * 3 + ["DE"] * 2):
        CustomerFactory(external_id=f"b{i}", country=country)


def ids(segment: Segment) -> set[str]:
    segment.refresh_from_db()
    return set(segment_customers(segment).values_list("external_id", flat=True))


# ----------------------------------------------------------------------------- create


def test_create_a_rule_segment_from_the_api_payload(base, marketer):
    segment = membership.segment_create({"name": "Americans", "kind": "rule", "rule": country_rule("US")}, user=marketer)
    assert segment.kind == "rule" and segment.created_by == marketer and segment.current_version == 0
    assert segment_customers(segment).count() == 0  # nothing until the first refresh


def test_create_refuses_a_bad_rule_with_its_path(base):
    with pytest.raises(specs.SpecInvalid) as caught:
        membership.segment_create({"name": "x", "rule": {"all": [country_rule("US"), {"field": "nope", "op": "eq"}]}})
    assert {"path": "rule.all[1].field", "message": "unknown field 'nope'"} in caught.value.errors


def test_create_refuses_a_duplicate_name_and_unknown_keys(base):
    membership.segment_create({"name": "x", "rule": country_rule("US")})
    with pytest.raises(specs.SpecInvalid) as caught:
        membership.segment_create({"name": "x", "rule": country_rule("US"), "colour": "red"})
    paths = {e["path"] for e in caught.value.errors}
    assert paths == {"name", "colour"}


def test_create_a_model_segment_needs_a_model_and_a_band(base):
    with pytest.raises(specs.SpecInvalid) as caught:
        membership.segment_create({"name": "risky", "kind": "propensity"})
    assert {e["path"] for e in caught.value.errors} >= {"model", "threshold"}


def test_create_a_segment_with_a_schedule(base):
    segment = membership.segment_create({"name": "daily", "rule": country_rule("US"),
                                       "schedule": {"every": "day", "at": "06:30"}})
    assert schedule_describe(schedules.segment_schedule(segment))["crontab"] == "30 6 * * *"


def test_update_changes_the_rule_for_the_next_refresh(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    membership.segment_refresh(segment)
    membership.segment_update(segment, {"rule": country_rule("DE")})
    assert len(ids(segment)) == 4
    membership.segment_refresh(segment)
    assert ids(segment) == {"b7", "b8"}


def test_update_keeps_what_it_does_not_change(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US"), "family": "geo", "rank": 1,
                                       "description": "people in the US"})
    updated = membership.segment_update(segment, {"rule": country_rule("GB")})
    assert (updated.name, updated.family, updated.params, updated.description) == (
        "x", "geo", {"rank": 1}, "people in the US")
    assert updated.rule == country_rule("GB")


def test_update_refuses_a_rule_that_would_reference_itself(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    with pytest.raises(specs.SpecInvalid) as caught:
        membership.segment_update(segment, {"rule": {"field": "segment", "op": "eq", "value": segment.pk}})
    assert caught.value.errors == [{"path": "rule.value", "message": "membership makes a cycle: x -> x"}]


def test_delete_is_refused_while_another_rule_reads_the_segment(base):
    us = membership.segment_create({"name": "us", "rule": country_rule("US")})
    membership.segment_create({"name": "not us", "rule": {"not": {"field": "segment", "op": "eq", "value": us.pk}}})
    with pytest.raises(specs.SpecInvalid, match="used by the rule of not us"):
        membership.segment_delete(us)
    assert Segment.objects.filter(pk=us.pk).exists()


# ---------------------------------------------------------------------------- refresh


def test_refresh_materialises_a_new_version_with_history(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    (first,) = membership.segment_refresh(segment)
    assert (first.version, first.size, first.entered, first.left) == (1, 4, 4, 0)
    assert ids(segment) == {"b0", "b1", "b2", "b3"}

    membership.segment_update(segment, {"rule": country_rule("US", "GB")})
    Customer.objects.filter(external_id="b0").update(country="FR")
    (second,) = membership.segment_refresh(segment)
    # b0 left, b4..b6 entered.
    assert (second.version, second.size, second.entered, second.left) == (2, 6, 3, 1)
    segment.refresh_from_db()
    assert segment.current_version == 2 and segment.size == 6 and segment.refreshed_at is not None
    assert list(SegmentRefresh.objects.filter(segment=segment).values_list("version", flat=True)) == [1, 2]


def entrants(segment: Segment, version: int) -> set[str]:
    return set(Customer.objects.filter(id__in=Entrant.objects.filter(segment=segment, version=version)
                                       .values("customer_id")).values_list("external_id", flat=True))


def test_a_refresh_keeps_its_entered_list_and_a_first_refresh_none(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US", "GB")})
    membership.segment_refresh(segment)
    assert not Entrant.objects.filter(segment=segment).exists()  # everyone entered: the version says so
    Customer.objects.filter(external_id__in=["b0", "b4"]).update(country="FR")
    Customer.objects.filter(external_id__in=["b7", "b8"]).update(country="US")
    (second,) = membership.segment_refresh(segment)
    assert entrants(segment, 2) == {"b7", "b8"} and (second.entered, second.left) == (2, 2)
    # members of version 2 that version 1 did not have, counted independently
    new = set(Membership.objects.filter(segment=segment, version=2).values_list("customer_id", flat=True))
    old = set(Membership.objects.filter(segment=segment, version=1).values_list("customer_id", flat=True))
    assert set(Entrant.objects.filter(segment=segment, version=2).values_list("customer_id", flat=True)) == new - old
    (third,) = membership.segment_refresh(segment)
    assert third.entered == 0 and not Entrant.objects.filter(segment=segment, version=3).exists()


def test_refresh_twice_without_changes_enters_and_leaves_nobody(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("GB")})
    membership.segment_refresh(segment)
    (again,) = membership.segment_refresh(segment)
    assert (again.version, again.size, again.entered, again.left) == (2, 3, 0, 0)


def test_refresh_uses_insert_select_not_a_python_loop(base, django_assert_max_num_queries):
    for i in range(200):
        CustomerFactory(external_id=f"many{i}", country="US")
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    with django_assert_max_num_queries(25):
        membership.segment_refresh(segment)
    assert segment_customers(Segment.objects.get(pk=segment.pk)).count() == 204


def test_old_versions_are_pruned_beyond_the_kept_ones(base):
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    for _ in range(membership.KEEP_VERSIONS + 2):
        membership.segment_refresh(segment)
    kept = sorted(set(Membership.objects.filter(segment=segment).values_list("version", flat=True)))
    segment.refresh_from_db()
    assert kept == list(range(segment.current_version - membership.KEEP_VERSIONS + 1, segment.current_version + 1))
    # The entered lists go with their versions.
    Customer.objects.filter(external_id="b4").update(country="US")
    membership.segment_refresh(segment)
    segment.refresh_from_db()
    assert Entrant.objects.filter(segment=segment, version=segment.current_version).count() == 1
    for _ in range(membership.KEEP_VERSIONS):
        membership.segment_refresh(segment)
    assert not Entrant.objects.filter(segment=segment).exists()
    # The history keeps every refresh even when the memberships are gone.
    assert SegmentRefresh.objects.filter(segment=segment).count() == 2 * membership.KEEP_VERSIONS + 3


def test_a_family_refreshes_together_under_one_version(base):
    us = membership.segment_create({"name": "us", "rule": country_rule("US"), "family": "geo", "rank": 0})
    eu = membership.segment_create({"name": "eu", "rule": country_rule("GB", "DE"), "family": "geo", "rank": 1})
    membership.segment_refresh(us)
    membership.segment_refresh(eu)
    us.refresh_from_db()
    eu.refresh_from_db()
    assert us.current_version == eu.current_version == 2
    assert SegmentRefresh.objects.filter(segment__family="geo").count() == 4


def test_a_rule_can_use_another_segments_membership(base):
    us = membership.segment_create({"name": "us", "rule": country_rule("US")})
    OrderFactory(customer=Customer.objects.get(external_id="b1"))
    buyers = membership.segment_create({"name": "us buyers", "rule": {"all": [
        {"field": "segment", "op": "eq", "value": us.pk}, {"field": "frequency", "op": "gte", "value": 1}]}})
    membership.segment_refresh_all()
    assert ids(buyers) == {"b1"}


def test_refresh_all_refreshes_dependencies_first(base):
    us = membership.segment_create({"name": "z-us", "rule": country_rule("US")})
    # Named to sort first, so a naive order would refresh it before its dependency.
    not_us = membership.segment_create({"name": "a-not-us", "rule": {"not": {"field": "segment", "op": "eq",
                                                                            "value": us.pk}}})
    refreshes = membership.segment_refresh_all()
    order = [r.segment_id for r in refreshes]
    assert order.index(us.pk) < order.index(not_us.pk)
    assert len(ids(not_us)) == 5


def test_a_rule_on_a_deleted_attribute_fails_loudly_on_refresh(base):
    AttributeDefinition.objects.create(name="plan", type="text")
    segment = membership.segment_create({"name": "x", "rule": {"field": "attributes.plan", "op": "eq", "value": "pro"}})
    AttributeDefinition.objects.all().delete()
    with pytest.raises(Exception, match="unknown field"):
        membership.segment_refresh(segment)
    segment.refresh_from_db()
    assert segment.current_version == 0  # nothing half-done


def test_features_in_a_rule_are_evaluated_as_of_the_refresh(base):
    customer = Customer.objects.get(external_id="b0")
    OrderFactory(customer=customer, ordered_at=timezone.now() - timedelta(days=10))
    segment = membership.segment_create({"name": "recent", "rule": {"field": "recency_days", "op": "lte", "value": 30}})
    membership.segment_refresh(segment)
    assert ids(segment) == {"b0"}
    membership.segment_refresh(segment, now=timezone.now() + timedelta(days=30))
    assert ids(segment) == set()


# ------------------------------------------------------------------------ concurrency

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="needs concurrent connections with MVCC (PostgreSQL)")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_reader_never_sees_a_half_written_refresh(monkeypatch):
    """A reader counting members during refreshes sees the old size or the new one only."""
    for i in range(300):
        CustomerFactory(external_id=f"c{i}", country="US" if i < 100 else "GB")
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    membership.segment_refresh(segment)

    original = membership._materialise

    def slow_materialise(*args, **kwargs):
        refresh = original(*args, **kwargs)
        time.sleep(0.3)  # rows written, version moved, not committed: the dangerous moment
        return refresh

    monkeypatch.setattr(membership, "_materialise", slow_materialise)
    seen: list[int] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                current = Segment.objects.get(pk=segment.pk)
                seen.append(segment_customers(current).count())
                # Straight from the table too: the rows of the version the row points at.
                seen.append(Membership.objects.filter(segment_id=segment.pk, version=current.current_version).count())
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for countries in (("US", "GB"), ("US",), ("US", "GB")):
            membership.segment_update(segment, {"rule": country_rule(*countries)})
            membership.segment_refresh(segment)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert seen and set(seen) <= {100, 300}
    assert {100, 300} <= set(seen)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_segment_queue_up(monkeypatch):
    for i in range(50):
        CustomerFactory(external_id=f"c{i}", country="US")
    segment = membership.segment_create({"name": "x", "rule": country_rule("US")})
    original = membership._materialise

    def slow_materialise(*args, **kwargs):
        refresh = original(*args, **kwargs)
        time.sleep(0.2)
        return refresh

    monkeypatch.setattr(membership, "_materialise", slow_materialise)
    errors: list[BaseException] = []

    def refresh():
        try:
            membership.segment_refresh(segment.pk)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    segment.refresh_from_db()
    assert segment.current_version == 3 and segment.size == 50
    assert list(SegmentRefresh.objects.filter(segment=segment).values_list("version", "size")) == [
        (1, 50), (2, 50), (3, 50)]
    assert Membership.objects.filter(segment=segment, version=3).count() == 50


# -------------------------------------------------------------------------- ties at a top share


@pytest.fixture
def flat_model():
    """A model that scores ten customers: three apart, then seven the same."""
    from segments.models import ModelScore, SegmentModel

    customers = CustomerFactory.create_batch(10)
    model = SegmentModel.objects.create(name="flat", kind="propensity", pipeline=b"")
    scores = [0.9, 0.8, 0.7] + [0.2] * 7
    ModelScore.objects.bulk_create(ModelScore(model=model, customer=c, score=s) for c, s in zip(customers, scores))
    return model, customers


def test_a_top_share_ending_inside_a_tie_is_refused_in_words(flat_model):
    model, _ = flat_model
    with pytest.raises(specs.SpecInvalid) as caught:
        membership.segment_create({"name": "top half", "kind": "propensity", "model": model.id, "top_fraction": 0.5})
    assert caught.value.errors[0]["path"] == "ties"
    assert "7 customers share the score 0.2 and only 2 of them fit" in caught.value.errors[0]["message"]
    assert not Segment.objects.filter(name="top half").exists()


def test_taking_all_tied_takes_everyone_at_the_cut_score_and_never_the_lowest_ids(flat_model):
    model, customers = flat_model
    segment = membership.segment_create({"name": "top half", "kind": "propensity", "model": model.id,
                                         "top_fraction": 0.5, "ties": "include"})
    membership.segment_refresh(segment)
    segment.refresh_from_db()
    assert segment.size == 10
    assert set(segment_customers(segment).values_list("id", flat=True)) == {c.id for c in customers}


def test_a_top_share_ending_between_two_scores_needs_no_tie_rule(flat_model):
    model, customers = flat_model
    segment = membership.segment_create({"name": "top 30", "kind": "propensity", "model": model.id,
                                         "top_fraction": 0.3})
    membership.segment_refresh(segment)
    segment.refresh_from_db()
    assert set(segment_customers(segment).values_list("id", flat=True)) == {c.id for c in customers[:3]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner statistics")
def test_a_large_refresh_leaves_the_planner_counting_its_members(monkeypatch):
    """The member list and a launch are planned right after a refresh: on its rows."""
    monkeypatch.setattr(db, "STATISTICS_REFRESH_ROWS", 100)
    Customer.objects.bulk_create(Customer(external_id=f"m{i}", country="US") for i in range(150))
    segment = membership.segment_create({"name": "us", "rule": {"field": "country", "op": "eq", "value": "US"}})
    membership.segment_refresh(segment)
    assert planned_rows(Membership) == 150
