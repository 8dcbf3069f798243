"""campaigns/api.py: offers, campaigns and the ledger over REST; the schema still builds."""

import pytest

from campaigns.models import Campaign
from campaigns.services.launch_request import campaign_launch_run
from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db



def test_a_marketer_creates_launches_and_watches_a_campaign(marketer_api, segment):
    created = marketer_api.post("/api/campaigns/", spec(), format="json")
    assert created.status_code == 201, created.content
    cid = created.json()["id"]
    launched = marketer_api.post(f"/api/campaigns/{cid}/launch/")
    # The request records the intent; the worker's task writes the ledger.
    assert launched.status_code == 200 and launched.json()["state"] == "launching"
    assert launched.json()["total"] == 0
    campaign_launch_run(cid)
    assert marketer_api.get(f"/api/campaigns/{cid}/").json()["state"] == "sending"
    status = marketer_api.get(f"/api/campaigns/{cid}/status/").json()
    assert status["total"] == 200 and status["counts"]["pending"] + status["counts"]["held_out"] == 200
    ledger = marketer_api.get(f"/api/campaigns/{cid}/ledger/?arm=holdout").json()
    assert ledger["count"] == status["counts"]["held_out"] and ledger["results"][0]["status"] == "held_out"
    assert marketer_api.post(f"/api/campaigns/{cid}/pause/").json()["state"] == "paused"
    assert marketer_api.post(f"/api/campaigns/{cid}/resume/").json()["state"] == "sending"
    assert marketer_api.post(f"/api/campaigns/{cid}/cancel/").json()["state"] == "cancelled"


def test_an_invalid_spec_answers_400_with_the_reason(marketer_api, segment):
    response = marketer_api.post("/api/campaigns/", spec(holdout=1.5), format="json")
    assert response.status_code == 400 and "holdout" in response.json()["detail"]


def test_a_viewer_reads_but_cannot_create(viewer_api, segment):
    assert viewer_api.post("/api/campaigns/", spec(), format="json").status_code == 403
    assert viewer_api.get("/api/campaigns/").status_code == 200


def test_offers_are_created_and_listed(marketer_api):
    body = {"name": "ten", "discount": "10%", "code_mode": "unique", "code": "TEN", "landing_url": "https://x.example/"}
    assert marketer_api.post("/api/offers/", body, format="json").status_code == 201
    assert marketer_api.get("/api/offers/").json()["results"][0]["name"] == "ten"


def test_preview_renders_one_variant_for_one_customer(marketer_api, campaign, customers):
    response = marketer_api.get(f"/api/campaigns/{campaign.id}/preview/?variant=A&customer={customers[0].external_id}")
    assert response.status_code == 200 and response.json()["subject"] == "Hello Name"


def test_launch_in_the_create_call_records_the_intent_and_the_task_launches(marketer_api, segment):
    response = marketer_api.post("/api/campaigns/?launch=true", spec(), format="json")
    assert response.status_code == 201 and response.json()["state"] == "launching"
    campaign = Campaign.objects.get()
    assert not campaign.ledger.exists()  # nothing written in the request
    assert campaign_launch_run(campaign.id) == "sending"
    assert campaign.ledger.count() == 200


def test_a_variant_from_a_layout_gets_inlined_html(marketer_api, segment):
    body = spec()
    body["variants"][1] = {"name": "B", "subject": "Hi", "layout": "spotlight",
                           "content": {"headline": "Hello {{ customer.first_name }}", "body": "Spring is here.",
                                       "button": "Shop now", "brand": "Acme"}}
    response = marketer_api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    variant = response.json()["variants"][1]
    assert variant["layout"] == "spotlight" and 'style="' in variant["html"] and "{{ offer.code }}" in variant["html"]


def test_an_unknown_layout_answers_400_naming_it(marketer_api, segment):
    body = spec()
    body["variants"][0] = {"name": "A", "subject": "Hi", "layout": "poster", "content": {"body": "x"}}
    response = marketer_api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 400 and "unknown layout 'poster'" in response.json()["detail"]


def test_the_api_schema_still_generates(viewer_api):
    response = viewer_api.get("/api/schema/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/api/campaigns/{id}/launch/" in body and "/api/campaigns/{id}/ledger/" in body


def test_a_template_over_the_render_budget_answers_400_naming_variant_and_field(marketer_api, segment, settings):
    settings.TEMPLATE_RENDER_SECONDS = 0.5
    body = spec()
    body["variants"][0]["html"] = "{{ 9**(9**8) }}"
    response = marketer_api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 400 and "variant 'A', html: over the render budget" in response.json()["detail"]
    assert not Campaign.objects.exists()


def test_over_long_fields_answer_400_naming_the_field(marketer_api, segment):
    body = spec()
    body["variants"][0]["preheader"] = "p" * 501
    response = marketer_api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 400 and "preheader: at most 500" in response.json()["detail"]
    response = marketer_api.post("/api/offers/", {"name": "x", "code": "c" * 65}, format="json")
    assert response.status_code == 400 and "offer.code: at most 64" in response.json()["detail"]


def test_a_from_email_with_cr_lf_answers_400(marketer_api, segment):
    response = marketer_api.post("/api/campaigns/", spec(from_email="a@example.com\r\nBcc: b@example.com"), format="json")
    assert response.status_code == 400 and response.json()["detail"].startswith("from_email: ")


@pytest.mark.django_db(transaction=True)
def test_four_concurrent_creates_of_one_name_make_one_campaign_and_no_500(marketer, segment):
    import threading

    from django.db import connection

    from core.db import is_postgres
    from tests.conftest import _api

    if not is_postgres():
        pytest.skip("SQLite has one writer at a time: concurrent requests are a PostgreSQL matter")
    barrier, codes = threading.Barrier(4), []

    def create():
        try:
            barrier.wait()
            codes.append(_api(marketer).post("/api/campaigns/", spec(name="twin"), format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [201, 400, 400, 400]
    assert Campaign.objects.filter(name="twin").count() == 1
