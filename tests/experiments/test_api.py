"""experiments/api.py: REST endpoints with role checks, and the OpenAPI schema."""

import csv
import io

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from experiments.models import Report

from .factories import campaign_experiment, expose, order
from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    experiment = campaign_experiment()
    order(expose(experiment, "offer"), days_after=1)
    expose(experiment, "holdout")
    return experiment


def test_viewer_lists_and_reads_an_experiment(viewer_api, experiment):
    listing = viewer_api.get("/api/experiments/")
    detail = viewer_api.get(f"/api/experiments/{experiment.id}/")
    assert listing.status_code == 200 and listing.json()["results"][0]["name"] == "spring"
    assert detail.status_code == 200
    assert [a["name"] for a in detail.json()["arms"]] == ["holdout", "offer"]
    assert detail.json()["metrics"][0] == {"name": "conversion", "kind": "binary", "source": "order_conversion",
                                           "is_primary": True, "event_kind": "", "order_filter": {}}


def test_viewer_gets_the_report_as_json(viewer_api, experiment):
    response = viewer_api.get(f"/api/experiments/{experiment.id}/report/")
    assert response.status_code == 200
    assert_report_schema(response.json())
    assert Report.objects.filter(experiment=experiment).exists()


def test_report_accepts_a_breakdown_attribute(viewer_api, experiment):
    body = viewer_api.get(f"/api/experiments/{experiment.id}/report/?by=country").json()
    assert body["breakdown"]["by"] == "country"


def test_a_breakdown_the_report_cannot_make_is_a_400_saying_why(viewer_api, experiment, monkeypatch):
    monkeypatch.setattr("experiments.analysis.MAX_SEGMENTS", 0)
    response = viewer_api.get(f"/api/experiments/{experiment.id}/report/?by=country")
    assert response.status_code == 400 and "categorical" in response.json()["by"]


def test_viewer_exports_the_report_as_csv(viewer_api, experiment):
    response = viewer_api.get(f"/api/experiments/{experiment.id}/export/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["metric"], r["arm"]) for r in rows} >= {("conversion", "offer"), ("conversion", "holdout")}


def test_viewer_cannot_queue_a_refresh(viewer_api, experiment):
    assert viewer_api.post(f"/api/experiments/{experiment.id}/refresh/").status_code == 403


def test_marketer_queues_a_refresh_once_the_request_commits(marketer_api, experiment,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_api.post(f"/api/experiments/{experiment.id}/refresh/", {"by": ""}, format="json")
    assert response.status_code == 202 and response.json()["queued"] is True
    assert len(callbacks) == 1


def test_anonymous_requests_are_refused(experiment):
    assert APIClient().get("/api/experiments/").status_code in (401, 403)


def test_an_unknown_experiment_is_404(viewer_api):
    assert viewer_api.get("/api/experiments/999999/report/").status_code == 404


def test_plan_gives_units_per_arm_by_get_and_by_post(viewer_api):
    query = viewer_api.get("/api/experiments/plan/", {"baseline": 0.05, "mde": 0.01, "alpha": 0.05, "power": 0.8})
    posted = viewer_api.post("/api/experiments/plan/", {"baseline": 0.05, "mde": 0.01}, format="json")
    assert query.status_code == posted.status_code == 200
    assert query.json()["n_per_arm"] == posted.json()["n_per_arm"]
    # Textbook unpooled formula for 5% -> 6%: about 8,150 per arm.
    assert 8000 < query.json()["n_per_arm"] < 8300
    assert query.json()["total"] == 2 * query.json()["n_per_arm"]


def test_plan_for_a_continuous_metric_needs_the_standard_deviation(viewer_api):
    missing = viewer_api.get("/api/experiments/plan/", {"kind": "continuous", "mde": 2})
    given = viewer_api.get("/api/experiments/plan/", {"kind": "continuous", "mde": 2, "sd": 20})
    assert missing.status_code == 400 and "sd" in missing.json()
    assert given.status_code == 200 and given.json()["n_per_arm"] > 1500


def test_plan_with_an_impossible_rate_is_a_400(viewer_api):
    assert viewer_api.get("/api/experiments/plan/", {"baseline": 0.99, "mde": 0.05}).status_code == 400


def test_the_openapi_schema_generates_with_the_experiment_endpoints_and_no_warnings(viewer_api):
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = [m for m in list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
                if "experiment" in m.lower() or "plan" in m.lower()]
    assert problems == []
    assert {"/api/experiments/", "/api/experiments/{id}/report/", "/api/experiments/{id}/export/",
            "/api/experiments/{id}/refresh/", "/api/experiments/plan/"} <= set(schema["paths"])
    assert viewer_api.get("/api/schema/").status_code == 200
