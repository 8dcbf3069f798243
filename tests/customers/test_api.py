import pytest

from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_list_filters_by_country_and_search(viewer_api):
    CustomerFactory(external_id="a", country="FR", name="Amélie")
    CustomerFactory(external_id="b", country="US", name="Bob")
    body = viewer_api.get("/api/customers/", {"country": "fr"}).json()
    assert [c["external_id"] for c in body["results"]] == ["a"]
    body = viewer_api.get("/api/customers/", {"search": "b"}).json()
    assert [c["external_id"] for c in body["results"]] == ["b"]


def test_a_bad_date_filter_says_which_parameter(viewer_api):
    response = viewer_api.get("/api/customers/", {"signed_up_after": "soon"})
    assert response.status_code == 400 and "signed_up_after" in response.json()


def test_batch_upsert_creates_updates_and_reports_rejects_by_index(marketer_api):
    CustomerFactory(external_id="k1", name="Old")
    response = marketer_api.post(
        "/api/customers/batch/",
        {"customers": [
            {"external_id": "k1", "name": "New", "vip": True},
            {"external_id": "k2", "email": "k2@example.com", "vip": False},
            {"external_id": "k3", "email": "broken"},
        ]},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200, body
    assert (body["created"], body["updated"], body["rejected"]) == (1, 1, 1)
    assert body["rejects"][0]["index"] == 2 and "broken" in body["rejects"][0]["reason"]
    assert Customer.objects.get(external_id="k1").name == "New"
    assert Customer.objects.get(external_id="k2").attributes == {"vip": False}


def test_a_viewer_cannot_upsert(viewer_api):
    response = viewer_api.post("/api/customers/batch/", {"customers": [{"external_id": "x"}]}, format="json")
    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_the_openapi_schema_generates(viewer_api):
    response = viewer_api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/customers/batch/" in response.content


def test_a_token_from_username_and_password_opens_the_api(client, viewer):
    token = client.post("/api/token/", {"username": viewer.username, "password": "pw-for-tests-only"}).json()["token"]
    response = client.get("/api/customers/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200


def test_batch_upsert_rejects_a_nul_byte_by_index_and_keeps_the_rest(marketer_api):
    response = marketer_api.post(
        "/api/customers/batch/",
        {"customers": [{"external_id": "n1", "name": "A\u0000B"}, {"external_id": "n2", "name": "Bob"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["imported"] == 1 and body["rejects"] == [{"index": 0, "reason": "row has a NUL byte in column 'name'"}]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["n2"]


def test_batch_upsert_leaves_out_an_over_long_attribute_name_and_says_so(marketer_api):
    name = "a" * 101
    body = marketer_api.post("/api/customers/batch/", {"customers": [{"external_id": "n1", name: 1}]}, format="json").json()
    assert body["imported"] == 1 and list(body["columns_ignored"]) == [name]


def test_a_batch_body_over_the_request_limit_is_a_413_that_says_what_to_do(marketer_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    items = [{"external_id": f"k{i}", "note": "x" * 100} for i in range(200)]
    response = marketer_api.post("/api/customers/batch/", {"customers": items}, format="json")
    assert response.status_code == 413
    assert "fewer customers per request" in response.json()["detail"]
