"""segments/api.py: the REST endpoints, their permissions and the OpenAPI schema."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from django_celery_beat.models import PeriodicTask

from core.db import is_postgres
from customers.models import Customer
from segments.services import membership
from segments.models import Membership, Segment, SegmentRefresh
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
RULE = {"all": [{"field": "country", "op": "eq", "value": "US"}]}


@pytest.fixture
def customers():
    for i in range(5):
        CustomerFactory(external_id=f"a{i}", country="US" if i < 3 else "GB")


@pytest.fixture
def refreshed(customers):
    segment = membership.segment_create({"name": "us", "rule": RULE, "family": "geo", "rank": 0})
    membership.segment_refresh(segment)
    return Segment.objects.get(pk=segment.pk)


def test_list_and_retrieve_for_a_viewer(viewer_api, refreshed):
    listed = viewer_api.get("/api/segments/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["name"] == "us"
    detail = viewer_api.get(f"/api/segments/{refreshed.pk}/").json()
    assert detail["size"] == 3 and detail["current_version"] == 1 and detail["rule"] == RULE


def test_anonymous_is_refused(client, refreshed):
    assert client.get("/api/segments/").status_code in (401, 403)


def test_create_queues_the_first_refresh(marketer_api, customers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_api.post("/api/segments/", {"name": "us", "rule": RULE}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "rule"
    assert len(callbacks) == 1  # segment_refresh.delay_on_commit


def test_create_returns_rule_errors_with_paths(marketer_api, customers):
    bad = {"name": "x", "rule": {"all": [{"field": "country", "op": "eq", "value": "US"},
                                         {"any": [{"field": "country", "op": "gt", "value": 3}]}]}}
    response = marketer_api.post("/api/segments/", bad, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{
        "path": "rule.all[1].any[0].op",
        "message": "operator 'gt' is not allowed for country (text); use one of eq, ne, in, not_in, contains, "
                   "starts_with, is_null"}]


def test_a_viewer_cannot_create_or_refresh(viewer_api, refreshed):
    assert viewer_api.post("/api/segments/", {"name": "x", "rule": RULE}, format="json").status_code == 403
    assert viewer_api.post(f"/api/segments/{refreshed.pk}/refresh/").status_code == 403


def test_preview_counts_without_saving_and_a_viewer_may_preview(viewer_api, customers):
    response = viewer_api.post("/api/segments/preview/", {"rule": RULE, "sample": 2}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and body["estimated"] is False and len(body["sample"]) == 2
    assert not Segment.objects.exists()


def test_preview_refuses_injection_in_a_field_name(viewer_api, customers):
    rule = {"field": "attributes.a') OR 1=1 --", "op": "eq", "value": "x"}
    response = viewer_api.post("/api/segments/preview/", {"rule": rule}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "rule.field"
    value = "x'); DROP TABLE customers_customer; --"
    response = viewer_api.post("/api/segments/preview/", {"rule": {"field": "name", "op": "eq", "value": value}},
                               format="json")
    assert response.status_code == 200 and response.json()["count"] == 0
    assert Customer.objects.count() == 5


def test_refresh_is_queued(marketer_api, refreshed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_api.post(f"/api/segments/{refreshed.pk}/refresh/")
    assert response.status_code == 202 and response.json() == {"queued": True, "segment": refreshed.pk}
    assert len(callbacks) == 1


def test_members_are_paginated(viewer_api, refreshed):
    body = viewer_api.get(f"/api/segments/{refreshed.pk}/members/?page=1").json()
    assert body["count"] == 3
    assert [m["external_id"] for m in body["results"]] == ["a0", "a1", "a2"]


def test_members_page_by_cursor_in_customer_order(viewer_api, customers, monkeypatch):
    from segments import api

    for i in range(5, 12):
        CustomerFactory(external_id=f"a{i}", country="US")
    segment = membership.segment_create({"name": "us", "rule": RULE})
    membership.segment_refresh(segment)
    monkeypatch.setattr(api.MemberPagination, "page_size", 4)
    first = viewer_api.get(f"/api/segments/{segment.pk}/members/").json()
    assert first["count"] == 10 and first["previous"] is None and "cursor=" in first["next"]
    seen, pages, body = [], [], first
    while True:
        pages.append([m["external_id"] for m in body["results"]])
        seen += [m["id"] for m in body["results"]]
        if body["next"] is None:
            break
        body = viewer_api.get(body["next"]).json()
    assert [len(p) for p in pages] == [4, 4, 2]
    assert seen == sorted(seen) and len(set(seen)) == 10  # every member once, by id
    assert set(Customer.objects.filter(id__in=seen).values_list("country", flat=True)) == {"US"}
    back = viewer_api.get(body["previous"]).json()
    assert [m["external_id"] for m in back["results"]] == pages[1]


def test_members_bad_cursor_says_so(viewer_api, refreshed):
    response = viewer_api.get(f"/api/segments/{refreshed.pk}/members/?cursor=not-a-cursor")
    assert response.status_code == 404 and "cursor" in response.json()["detail"].lower()


def test_history(viewer_api, refreshed):
    membership.segment_refresh(refreshed)
    body = viewer_api.get(f"/api/segments/{refreshed.pk}/history/").json()
    assert [(r["version"], r["size"], r["entered"], r["left"]) for r in body["results"]] == [(2, 3, 0, 0), (1, 3, 3, 0)]


def test_migration_and_customer_history(viewer_api, refreshed):
    gb = membership.segment_create({"name": "gb", "rule": {"field": "country", "op": "eq", "value": "GB"},
                                  "family": "geo", "rank": 1})
    Customer.objects.filter(external_id="a0").update(country="GB")
    membership.segment_refresh(gb)
    customer = Customer.objects.get(external_id="a0")
    body = viewer_api.get(f"/api/segments/{refreshed.pk}/migration/?customer={customer.pk}").json()
    cells = {(r["from"], r["to"]): r["customers"] for r in body["matrix"]}
    assert cells == {(refreshed.pk, refreshed.pk): 2, (refreshed.pk, gb.pk): 1, (None, gb.pk): 2}
    assert [h["segment_name"] for h in body["customer_history"]] == ["us", "gb"]
    assert [v["version"] for v in body["versions"]] == [2, 1]
    risk = viewer_api.get(f"/api/segments/{refreshed.pk}/at-risk/").json()
    assert [r["customer"] for r in risk["moved_down"]] == [customer.pk]


def test_migration_needs_a_family(viewer_api, customers):
    lone = membership.segment_create({"name": "lone", "rule": RULE})
    assert viewer_api.get(f"/api/segments/{lone.pk}/migration/").status_code == 400


def test_schedule_put_and_delete(marketer_api, refreshed):
    response = marketer_api.put(f"/api/segments/{refreshed.pk}/schedule/", {"every": "day", "at": "05:00"},
                                format="json")
    assert response.status_code == 200 and response.json()["crontab"] == "0 5 * * *"
    assert marketer_api.get(f"/api/segments/{refreshed.pk}/").json()["schedule"]["crontab"] == "0 5 * * *"
    bad = marketer_api.put(f"/api/segments/{refreshed.pk}/schedule/", {"every": "year"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "every"
    assert marketer_api.delete(f"/api/segments/{refreshed.pk}/schedule/").status_code == 204
    assert not PeriodicTask.objects.filter(name__startswith="segments:").exists()


def test_partial_update_changes_the_rule(marketer_api, refreshed):
    new_rule = {"field": "country", "op": "eq", "value": "GB"}
    response = marketer_api.patch(f"/api/segments/{refreshed.pk}/", {"rule": new_rule}, format="json")
    assert response.status_code == 200 and response.json()["rule"] == new_rule


def test_delete_and_refused_delete(marketer_api, refreshed):
    user = membership.segment_create({"name": "not us", "rule": {"not": {"field": "segment", "op": "eq",
                                                                        "value": refreshed.pk}}})
    response = marketer_api.delete(f"/api/segments/{refreshed.pk}/")
    assert response.status_code == 409 and "not us" in response.json()["errors"][0]["message"]
    assert marketer_api.delete(f"/api/segments/{user.pk}/").status_code == 204
    assert marketer_api.delete(f"/api/segments/{refreshed.pk}/").status_code == 204
    assert not Segment.objects.exists()


def test_field_registry_for_the_rule_builder(viewer_api, customers):
    body = viewer_api.get("/api/segments/fields/").json()
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["country"]["type"] == "text" and fields["country"]["values"] == ["GB", "US"]
    assert "between" in fields["frequency"]["operators"]
    assert body["operators"]["within_last_days"]["value"] == "days"


def test_models_list_and_train_is_queued(marketer_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_api.post("/api/segment-models/train/", {"kind": "rfm"}, format="json")
    assert response.status_code == 202 and len(callbacks) == 1
    assert marketer_api.get("/api/segment-models/").status_code == 200


def test_openapi_schema_still_generates_with_the_segment_endpoints(viewer_api):
    response = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json() if response["Content-Type"].endswith("json") else None
    text = response.content.decode()
    for path in ("/api/segments/", "/api/segments/preview/", "/api/segments/fields/",
                 "/api/segments/{id}/members/", "/api/segments/{id}/migration/", "/api/segment-models/train/"):
        assert path in text
    if schema:
        assert "SegmentPreview" in schema["components"]["schemas"]


# --------------------------------------------------------------------------- bad input is a 4xx (issue 11 item 8)


def test_a_body_that_is_not_an_object_is_a_400(marketer_api, refreshed):
    for body in ([None, None], [], "text", 3):
        assert marketer_api.post("/api/segments/", body, format="json").status_code == 400
        assert marketer_api.patch(f"/api/segments/{refreshed.pk}/", body, format="json").status_code == 400


def test_a_malformed_model_id_is_a_404(marketer_api):
    assert marketer_api.post("/api/segment-models/null,null/retrain/").status_code == 404
    assert marketer_api.post("/api/segment-models/999999/retrain/").status_code == 404


@pytest.mark.parametrize("query", ["limit=-5", "limit=0", "limit=1001", "margin=nan", "margin=-1", "margin=inf",
                                   "old=99999999999999999999", "new=-1", "limit=x"])
def test_at_risk_numbers_out_of_range_are_a_400_naming_the_parameter(viewer_api, refreshed, query):
    response = viewer_api.get(f"/api/segments/{refreshed.pk}/at-risk/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_migration_customer_beyond_bigint_is_a_400(viewer_api, refreshed):
    response = viewer_api.get(f"/api/segments/{refreshed.pk}/migration/?customer=99999999999999999999")
    assert response.status_code == 400 and "customer" in response.json()


def test_the_schema_documents_paginated_members_and_history_and_nullable_model_fields(viewer_api):
    schema = viewer_api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path, item in (("members", "SegmentMember"), ("history", "SegmentRefresh")):
        ok = paths[f"/api/segments/{{id}}/{path}/"]["get"]["responses"]["200"]["content"]["application/json"]
        paginated = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[-1]]
        assert paginated["properties"]["results"]["items"]["$ref"].endswith(f"/{item}")
    segment = schema["components"]["schemas"]["Segment"]["properties"]
    assert segment["model_name"]["nullable"] and segment["model_version"]["nullable"]


def test_a_rule_segment_answers_null_model_fields_as_documented(viewer_api, refreshed):
    detail = viewer_api.get(f"/api/segments/{refreshed.pk}/").json()
    assert detail["model_name"] is None and detail["model_version"] is None


@pytest.mark.skipif(not is_postgres(), reason="row locks and deferred foreign keys are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_deleting_a_segment_while_its_refresh_writes_waits_and_takes_the_new_rows(marketer_api, customers):
    segment = membership.segment_create({"name": "racing", "rule": RULE})
    writing, release = threading.Event(), threading.Event()

    def refresh_in_progress():
        # What a first refresh does: lock the row, write the next version, commit.
        try:
            with transaction.atomic():
                Segment.objects.select_for_update().get(pk=segment.pk)
                Membership.objects.create(segment_id=segment.pk, customer=Customer.objects.first(), version=1)
                SegmentRefresh.objects.create(segment_id=segment.pk, version=1, size=1, entered=1, left=0)
                writing.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=refresh_in_progress)
    thread.start()
    assert writing.wait(10)
    threading.Timer(1.0, release.set).start()
    response = marketer_api.delete(f"/api/segments/{segment.pk}/")
    thread.join(10)
    assert response.status_code == 204
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not Membership.objects.filter(segment_id=segment.pk).exists()
    assert not SegmentRefresh.objects.filter(segment_id=segment.pk).exists()
