"""From a ledger row to a message: the template context, offer codes, landing links."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings

from .models import Campaign, Offer, Variant
from .providers.base import OutgoingMessage
from .rendering import CompiledVariant, VariantSource, variant_compile, variant_render
from .sandbox import Budget
from .unsubscribe import unsubscribe_headers, unsubscribe_url

CUSTOMER_COLUMNS = ("id", "external_id", "email", "name", "country", "time_zone", "signup_date", "attributes")
_compiled: dict[tuple, CompiledVariant] = {}


def variant_source(variant: Variant) -> VariantSource:
    return VariantSource(
        name=variant.name, subject=variant.subject, preheader=variant.preheader, text=variant.text, html=variant.html
    )


def render_budget_get() -> Budget:
    """The budget every render gets, in the web process and in the worker (settings)."""
    return Budget(seconds=settings.TEMPLATE_RENDER_SECONDS, max_chars=settings.TEMPLATE_MAX_OUTPUT_KB * 1024)


def variant_compiled(variant: Variant) -> CompiledVariant:
    """Compiled once per process: variants are frozen once their campaign is launched."""
    # Keyed by the source itself: a tuple of the same strings hashes from their cached hashes
    # and compares by identity, where a SHA-1 of the source's repr was 2% of a send
    # worker's samples (once per message).
    key = (variant.id, variant.name, variant.subject, variant.preheader, variant.text, variant.html)
    if key not in _compiled:
        if len(_compiled) > 500:
            _compiled.clear()
        _compiled[key] = variant_compile(variant_source(variant), render_budget_get())
    return _compiled[key]


def customer_context(row: dict) -> dict:
    """What a template sees of a customer: its fields and `attributes`, nothing else."""
    name = row.get("name") or ""
    signup = row.get("signup_date")
    return {
        "id": row["id"],
        "external_id": row.get("external_id", ""),
        "email": row.get("email", ""),
        "name": name,
        "first_name": name.split()[0] if name.strip() else "",
        "country": row.get("country", ""),
        "time_zone": row.get("time_zone", ""),
        "signup_date": signup.isoformat() if hasattr(signup, "isoformat") else (signup or ""),
        "attributes": dict(row.get("attributes") or {}),
    }


def offer_code_for(offer: Offer | None, customer_id: int) -> str:
    """The code this customer gets: the shared one, or a unique one derived with a keyed hash,
    so it can be recomputed (and checked at the till) without a table of codes."""
    if offer is None or offer.code_mode == Offer.CodeMode.NONE:
        return ""
    if offer.code_mode == Offer.CodeMode.SHARED:
        return offer.code
    digest = hmac.new(settings.SECRET_KEY.encode(), f"offer-code:{offer.id}:{customer_id}".encode(), hashlib.sha256)
    token = base64.b32encode(digest.digest()[:8]).decode().rstrip("=")[:10]
    return f"{offer.code}-{token}" if offer.code else token


def landing_url_for(offer: Offer | None, campaign: Campaign, variant: Variant | None) -> str:
    if offer is None or not offer.landing_url:
        return ""
    tags = {"utm_source": "offerlab", "utm_medium": "email", "utm_campaign": campaign.name}
    if variant is not None:
        tags["utm_content"] = variant.name
    tags.update({k: str(v) for k, v in (offer.utm or {}).items() if k.startswith("utm_")})
    parts = urlsplit(offer.landing_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in tags]
    return urlunsplit(parts._replace(query=urlencode(query + list(tags.items()))))


def offer_context(offer: Offer | None, landing_url: str, code: str) -> dict:
    if offer is None:
        return {"name": "", "description": "", "discount": "", "code": "", "landing_url": ""}
    return {
        "name": offer.name,
        "description": offer.description,
        "discount": offer.discount,
        "code": code,
        "landing_url": landing_url,
    }


def message_context(campaign: Campaign, variant: Variant | None, customer: dict, key: str) -> dict:
    code = offer_code_for(campaign.offer, customer["id"])
    return {
        "customer": customer_context(customer),
        "offer": offer_context(campaign.offer, landing_url_for(campaign.offer, campaign, variant), code),
        "unsubscribe_url": unsubscribe_url(key) if key else f"{settings.SITE_URL}/u/preview/",
    }


def message_compose(
    campaign: Campaign, variant: Variant, customer: dict, *, key: str, email: str, batch: str, landing_url: str
) -> tuple[OutgoingMessage, str]:
    """The message for one ledger row, and the offer code it carries."""
    code = offer_code_for(campaign.offer, customer["id"])
    url = unsubscribe_url(key)
    context = {
        "customer": customer_context(customer),
        "offer": offer_context(campaign.offer, landing_url, code),
        "unsubscribe_url": url,
    }
    rendered = variant_render(variant_compiled(variant), context, render_budget_get())
    message = OutgoingMessage(
        key=key,
        to=email,
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=unsubscribe_headers(url),
        metadata={"offerlab_id": key, "offerlab_batch": batch, "offerlab_campaign": str(campaign.id)},
        tag=f"campaign-{campaign.id}",
    )
    return message, code
