"""Offers: what a campaign gives (a discount, a code, a landing page)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from campaigns.errors import CampaignError
from campaigns.models import Offer
from campaigns.validation import lengths_check

OFFER_FIELDS = ("name", "description", "discount", "code_mode", "code", "landing_url", "utm")


def offer_clean(spec: dict) -> dict:
    """The offer's fields from a spec, checked; each failure names the field."""
    if not isinstance(spec, dict):
        raise CampaignError("offer: an object of offer fields, or an offer's name or id")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise CampaignError("an offer needs a name")
    text = {k: spec[k] for k in ("name", "description", "discount", "code_mode", "code", "landing_url") if isinstance(spec.get(k), str)}
    lengths_check(Offer, text, "offer.")
    unknown = set(spec) - set(OFFER_FIELDS)
    if unknown:
        raise CampaignError(f"unknown offer field(s): {', '.join(sorted(unknown))}")
    mode = spec.get("code_mode") or (Offer.CodeMode.SHARED if spec.get("code") else Offer.CodeMode.NONE)
    if mode not in Offer.CodeMode.values:
        raise CampaignError(f"code_mode must be one of {', '.join(Offer.CodeMode.values)}")
    if mode == Offer.CodeMode.SHARED and not spec.get("code"):
        raise CampaignError("a shared code offer needs its code")
    utm = spec.get("utm") or {}
    if not isinstance(utm, dict) or any(not str(k).startswith("utm_") for k in utm):
        raise CampaignError("utm must be an object of utm_* tags, e.g. {\"utm_source\": \"newsletter\"}")
    url = str(spec.get("landing_url") or "")
    if url and not url.startswith(("https://", "http://")):
        raise CampaignError("landing_url must be an http(s) URL")
    return dict(name=name, description=spec.get("description") or "", discount=spec.get("discount") or "",
                code_mode=mode, code=spec.get("code") or "", landing_url=url, utm=utm)


def offer_create(spec: dict, *, user=None) -> Offer:
    fields = offer_clean(spec)
    if Offer.objects.filter(name=fields["name"]).exists():
        raise CampaignError(f"an offer named {fields['name']!r} already exists")
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin loses here, not with a 500
            return Offer.objects.create(**fields, created_by=user)
    except IntegrityError:
        raise CampaignError(f"an offer named {fields['name']!r} already exists") from None


def offer_update(offer: Offer, spec: dict) -> Offer:
    """Change an offer's terms in place (a draft's own offer, edited with its draft)."""
    fields = offer_clean(spec)
    for key, value in fields.items():
        setattr(offer, key, value)
    offer.save()
    return offer
