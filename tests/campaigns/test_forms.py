"""campaigns/forms.py: the composer's form to the campaign spec and back."""

import pytest
from django.http import QueryDict

from campaigns.forms import form_from_campaign, spec_from_post, variant_blocks
from campaigns.services.drafts import campaign_create
from tests.campaigns.conftest import spec


def post(**fields) -> QueryDict:
    q = QueryDict(mutable=True)
    for key, value in fields.items():
        q.setlist(key, value if isinstance(value, list) else [value])
    return q


def test_variant_blocks_keep_their_numbers_and_blank_ones_are_no_variant():
    data = post(name="x", segment="3", holdout="10", variant=["0", "2", "5"],
                v0_name="A", v0_subject="Hi", v0_layout="letter", v0_body="Hello", v0_button="Go",
                v2_name="", v2_subject="", v2_layout="spotlight",
                v5_name="C", v5_subject="Yo", v5_layout="", v5_text="plain", v5_html="<p>x</p>")
    assert [b["i"] for b in variant_blocks(data)] == [0, 2, 5]
    result = spec_from_post(data)
    assert result["holdout"] == pytest.approx(0.1) and result["segment"] == 3
    assert [v["name"] for v in result["variants"]] == ["A", "C"]
    assert result["variants"][0]["layout"] == "letter" and result["variants"][0]["content"]["body"] == "Hello"
    assert "layout" not in result["variants"][1] and result["variants"][1]["html"] == "<p>x</p>"


@pytest.mark.django_db
def test_a_saved_draft_fills_the_form_it_came_from(segment):
    body = spec()
    body["variants"][1] = {"name": "B", "subject": "Hi", "layout": "coupon",
                           "content": {"headline": "For you", "body": "Spring", "button": "Go", "brand": "Acme"}}
    form, blocks = form_from_campaign(campaign_create(body))
    assert form["name"] == "spring" and form["holdout"] == "10" and form["offer_code"] == "SPRING20"
    assert blocks[1]["layout"] == "coupon" and blocks[1]["headline"] == "For you" and blocks[1]["html"] == ""
    assert blocks[0]["layout"] == "" and "customer.name" in blocks[0]["html"]
