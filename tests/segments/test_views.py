"""The segment pages: builder with a live count, detail, models, migration."""

import json

import pytest

from customers.models import AttributeDefinition
from segments.services import membership
from segments.models import Segment
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def base():
    AttributeDefinition.objects.create(name="vip", type="boolean")
    for i, country in enumerate(["US"] * 5 + ["FR"] * 3):
        CustomerFactory(external_id=f"p{i}", country=country, attributes={"vip": i % 2 == 0})


def test_the_preview_counts_the_rule_being_built(client, marketer, base):
    client.force_login(marketer)
    one = client.post("/segments/builder/preview/", {"row": ["0"], "c0_field": "country", "c0_op": "eq", "c0_value": "US"})
    assert '<strong id="preview-count">5</strong>' in one.content.decode()
    two = client.post("/segments/builder/preview/", {
        "row": ["0", "1"], "combine": "all",
        "c0_field": "country", "c0_op": "eq", "c0_value": "US",
        "c1_field": "attributes.vip", "c1_op": "eq", "c1_value": "true",
    })
    assert '<strong id="preview-count">3</strong>' in two.content.decode()


def test_a_bad_value_is_reported_with_its_path(client, viewer, base):
    client.force_login(viewer)
    html = client.post("/segments/builder/preview/", {"row": ["0"], "c0_field": "attributes.vip", "c0_op": "eq", "c0_value": "perhaps"}).content.decode()
    assert "rule.all[0].value" in html


def test_the_json_box_takes_nested_rules(client, viewer, base):
    client.force_login(viewer)
    rule = {"any": [{"field": "country", "op": "eq", "value": "FR"}, {"not": {"field": "attributes.vip", "op": "eq", "value": True}}]}
    html = client.post("/segments/builder/preview/", {"rule_json": json.dumps(rule)}).content.decode()
    assert '<strong id="preview-count">5</strong>' in html  # 3 FR + 2 non-vip Americans


def test_a_row_offers_the_operators_of_its_field(client, viewer, base):
    client.force_login(viewer)
    html = client.get("/segments/builder/row/", {"index": "3", "c3_field": "attributes.vip"}).content.decode()
    assert 'name="c3_op"' in html and ">eq<" in html and ">contains<" not in html


def test_add_condition_numbers_the_new_row_after_the_rows_sent(client, viewer, base):
    # The button sends the rows there are (hx-include) instead of counting them in script,
    # which the Content-Security-Policy would block.
    client.force_login(viewer)
    html = client.get("/segments/builder/row/", {"c0_field": "country", "c2_field": "attributes.vip"}).content.decode()
    assert 'id="c3_field"' in html
    assert 'id="c0_field"' in client.get("/segments/builder/row/").content.decode()


def test_saving_creates_refreshes_and_shows_the_segment(client, marketer, base):
    client.force_login(marketer)
    response = client.post("/segments/new/", {"name": "Americans", "row": ["0"], "c0_field": "country", "c0_op": "eq", "c0_value": "US"})
    segment = Segment.objects.get(name="Americans")
    assert response.url == f"/segments/{segment.id}/" and segment.size == 5
    assert "p0" in client.get(response.url).content.decode() or "Americans" in client.get(response.url).content.decode()
    assert "Americans" in client.get("/segments/").content.decode()


def test_a_viewer_cannot_save_or_refresh(client, viewer, base):
    client.force_login(viewer)
    assert client.post("/segments/new/", {"name": "x"}).status_code == 403
    segment = membership.segment_create({"name": "all-us", "rule": {"field": "country", "op": "eq", "value": "US"}})
    assert client.post(f"/segments/{segment.id}/refresh/").status_code == 403


def test_models_and_migration_pages_answer_with_nothing_trained(client, viewer):
    client.force_login(viewer)
    assert "No models yet" in client.get("/segments/models/").content.decode()
    assert "train a model" in client.get("/segments/migration/").content.decode()
