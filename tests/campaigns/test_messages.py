"""campaigns/messages.py: a variant is compiled once per process, and again once edited."""

import pytest

from campaigns.messages import variant_compiled

pytestmark = pytest.mark.django_db


def test_a_variant_is_compiled_once_and_again_after_an_edit(campaign):
    variant = campaign.variants.first()
    compiled = variant_compiled(variant)
    assert variant_compiled(campaign.variants.get(id=variant.id)) is compiled, "a fresh read of the same variant"
    variant.text = "Edited for {{ customer.name }}"
    edited = variant_compiled(variant)
    assert edited is not compiled
    assert "Edited for" in edited.templates["text"].render(customer={"name": "Pat"})
