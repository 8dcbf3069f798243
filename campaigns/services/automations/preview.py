"""A step variant not saved yet (the builder's live preview), rendered for one real customer
through the same sandbox and render budget as a send. Nothing is written."""

from __future__ import annotations

from django.conf import settings

from campaigns.errors import CampaignError
from campaigns.messages import CUSTOMER_COLUMNS, customer_context, offer_context, render_budget_get
from campaigns.rendering import RenderedMessage, TemplateProblem, VariantSource, variant_compile, variant_render
from customers.models import Customer


def variant_preview(variant: dict, customer: Customer, *, where: str = "") -> RenderedMessage:
    """What `customer` would get from this variant (an automation has no offer box yet and the
    unsubscribe link is a dummy). CampaignError, prefixed with `where`, when it cannot render."""
    source = VariantSource(name=str(variant.get("name") or "a"), subject=str(variant.get("subject") or ""),
                           text=str(variant.get("text") or ""), html=str(variant.get("html") or ""))
    row = {k: getattr(customer, k) for k in CUSTOMER_COLUMNS}
    context = {"customer": customer_context(row), "offer": offer_context(None, "", ""),
               "unsubscribe_url": f"{settings.SITE_URL}/u/preview/"}
    try:
        budget = render_budget_get()
        return variant_render(variant_compile(source, budget), context, budget)
    except TemplateProblem as exc:
        raise CampaignError(f"{where}{exc.part}: {exc.detail}") from None
