"""NUL bytes in search, filter, rule and form values: a 400 naming the field, never a 500
(PostgreSQL refuses NUL in text; on the old code these reached a query and failed there)."""

from urllib.parse import urlencode

import pytest

from core.nul import nul_errors, nul_paths
from segments.models import Segment


def test_nul_paths_name_each_field_holding_a_nul():
    body = {"name": "ok", "rule": {"all": [{"field": "name", "op": "contains", "value": "a\x00b"},
                                          {"field": "country", "op": "in", "value": ["US", "\x00"]}]}}
    assert nul_paths(body) == ["rule.all.0.value", "rule.all.1.value"]
    assert nul_paths({"k\x00": "v"}) == ["k\x00"]
    assert list(nul_errors({"k\x00": "v"})) == ["k\\x00"]  # shown escaped, never echoed raw
    assert nul_paths({"clean": ["a", {"b": 1}]}) == []


@pytest.mark.django_db
def test_nul_in_a_rule_value_is_a_400_naming_the_value(viewer_api):
    rule = {"field": "name", "op": "contains", "value": "a\x00b"}
    response = viewer_api.post("/api/segments/preview/", {"rule": rule}, format="json")
    assert response.status_code == 400
    assert "rule.value" in response.json()


@pytest.mark.django_db
def test_nul_in_a_segment_name_is_a_400_and_nothing_is_saved(marketer_api):
    rule = {"field": "country", "op": "eq", "value": "US"}
    response = marketer_api.post("/api/segments/", {"name": "x\x00", "rule": rule}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert not Segment.objects.exists()


@pytest.mark.django_db
def test_nul_in_a_search_or_filter_is_a_400_naming_the_parameter(viewer_api):
    for param in ("search", "country", "email", "external_id"):
        response = viewer_api.get("/api/customers/", {param: "x\x00y"})
        assert response.status_code == 400, param
        assert param in response.json()


@pytest.mark.django_db
def test_nul_in_a_page_search_or_form_is_a_400(client, viewer):
    client.force_login(viewer)
    response = client.get("/customers/", {"q": "a\x00"})
    assert response.status_code == 400
    assert b"q:" in response.content
    # As a browser posts the builder's form (urlencoded).
    form = urlencode({"row": "0", "c0_field": "name", "c0_op": "contains", "c0_value": "a\x00"})
    response = client.post("/segments/builder/preview/", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert b"c0_value" in response.content
    # A \u0000 escape in the advanced JSON box decodes to a NUL: the rule problem names it.
    response = client.post("/segments/builder/preview/",
                           {"rule_json": '{"field": "name", "op": "contains", "value": "a\\u0000"}'})
    assert response.status_code == 200
    assert b"The rule: Contains a NUL byte" in response.content


@pytest.mark.django_db
def test_the_customers_batch_still_rejects_only_the_row_with_a_nul(marketer_api):
    rows = [{"external_id": "a1", "email": "a@example.com"}, {"external_id": "a2", "name": "bad\x00"}]
    response = marketer_api.post("/api/customers/batch/", {"customers": rows}, format="json")
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejects"]] == [1]
