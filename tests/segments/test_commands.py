"""Management commands: train_model, segment_refresh, segment_create."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.services.demo import demo_load
from segments.models import Segment, SegmentModel
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def shoppers():
    now = timezone.now()
    for i in range(40):
        customer = CustomerFactory(external_id=f"s{i}", country="US" if i % 2 else "GB")
        for k in range(i % 4):
            OrderFactory(customer=customer, ordered_at=now - timedelta(days=10 + 30 * k + i), amount=20 + i)


def test_train_model_propensity_json_reports_roc_auc():
    demo_load(customers=2000, seed=3)
    body = json.loads(run("train_model", "--kind", "propensity", "--churn-days", "90", "--json"))
    model = SegmentModel.objects.get(pk=body["model"])
    assert body["kind"] == "propensity" and model.kind == "propensity"
    assert 0.5 < body["metrics"]["roc_auc"] <= 1
    assert body["name"] == "churn" and body["version"] == 1
    assert {s["name"] for s in body["segments"]} == {"churn: high risk (top 10%)", "churn: medium risk (next 20%)",
                                                     "churn: low risk (the rest)"}
    assert body["feature_importance"][0]["feature"]


def test_train_model_kmeans_with_options_and_a_schedule(shoppers):
    body = json.loads(run("train_model", "--kind", "kmeans", "--k", "3", "--features", "recency_days", "frequency",
                          "monetary", "--name", "shop clusters", "--schedule", '{"every": "week", "at": "03:00"}',
                          "--json"))
    assert body["kind"] == "kmeans" and body["metrics"]["k"] == 3
    assert body["features"] == ["recency_days", "frequency", "monetary"]
    assert Segment.objects.filter(family="shop clusters").count() == 3
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(name="segments:retrain:shop clusters").exists()


def test_train_model_prints_a_summary_line(shoppers):
    out = run("train_model", "--kind", "rfm")
    assert out.startswith("trained rfm v1 (rfm) on 40 customers") and out.count("\n") == 1


def test_train_model_refuses_a_bad_target(shoppers):
    with pytest.raises(CommandError, match="target must be"):
        run("train_model", "--kind", "propensity", "--target", "missing")
    with pytest.raises(CommandError, match="takes no --target"):
        run("train_model", "--kind", "kmeans", "--churn-days", "30")


def test_segment_create_from_a_spec_file_then_refresh_by_name(shoppers, tmp_path):
    spec = tmp_path / "us.json"
    spec.write_text(json.dumps({"name": "US shoppers", "kind": "rule",
                                "rule": {"all": [{"field": "country", "op": "eq", "value": "US"},
                                                 {"field": "frequency", "op": "gte", "value": 1}]}}))
    body = json.loads(run("segment_create", "--spec", str(spec), "--json"))
    segment = Segment.objects.get(pk=body["segment"])
    assert body["size"] == segment.size == 20 and body["version"] == 1
    refreshed = json.loads(run("segment_refresh", "US shoppers", "--json"))
    assert refreshed["refreshed"] == [{"segment": segment.pk, "name": "US shoppers", "version": 2, "size": 20,
                                       "entered": 0, "left": 0, "seconds": refreshed["refreshed"][0]["seconds"]}]
    assert "US shoppers: 20" in run("segment_refresh", str(segment.pk))


def test_segment_create_reports_errors_with_paths(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"name": "bad", "rule": {"any": [{"field": "colour", "op": "eq", "value": 1}]}}))
    with pytest.raises(CommandError, match=r"rule.any\[0\].field: unknown field 'colour'"):
        run("segment_create", "--spec", str(spec))
    spec.write_text("{not json")
    with pytest.raises(CommandError, match="not JSON"):
        run("segment_create", "--spec", str(spec))


def test_segment_create_a_model_segment_from_a_spec(shoppers, tmp_path):
    run("train_model", "--kind", "rfm", "--no-segments")
    model = SegmentModel.objects.get(name="rfm")
    spec = tmp_path / "champions.json"
    tier, count = max(model.metrics["tier_counts"].items(), key=lambda item: item[1])
    spec.write_text(json.dumps({"name": "biggest tier", "kind": "rfm", "model": model.pk, "label": tier}))
    body = json.loads(run("segment_create", "--spec", str(spec), "--json"))
    assert body["kind"] == "rfm" and body["size"] == count > 0


def test_segment_refresh_all(shoppers):
    Segment.objects.create(name="a", rule={"field": "country", "op": "eq", "value": "US"})
    Segment.objects.create(name="b", rule={"field": "country", "op": "eq", "value": "GB"})
    body = json.loads(run("segment_refresh", "--all", "--json"))
    assert sorted((r["name"], r["size"]) for r in body["refreshed"]) == [("a", 20), ("b", 20)]


def test_segment_refresh_needs_a_known_segment():
    with pytest.raises(CommandError, match="no segment"):
        run("segment_refresh", "nope")
    with pytest.raises(CommandError, match="NAME_OR_ID or --all"):
        run("segment_refresh")


def test_segment_refresh_finds_a_segment_named_with_digits_by_name_first(shoppers):
    first = Segment.objects.create(name="first", rule={"field": "country", "op": "eq", "value": "US"})
    named = Segment.objects.create(name=str(first.pk), rule={"field": "country", "op": "eq", "value": "GB"})
    body = json.loads(run("segment_refresh", str(first.pk), "--json"))
    assert [r["segment"] for r in body["refreshed"]] == [named.pk]
