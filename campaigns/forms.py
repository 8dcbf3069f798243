"""The composer's form <-> the campaign spec (the same JSON the API and `launch_campaign
--spec` take), so the page, the API and the command share one set of checks (drafts.py).

Variants are blocks numbered by a hidden `variant` input each; the marketer adds and removes
blocks, so the numbers have gaps, and the order on the page is the order of the variants.
"""

from __future__ import annotations

from django.utils import timezone

from .layouts import CONTENT_FIELDS, LAYOUTS
from .models import Campaign

MAX_VARIANTS = 8
VARIANT_KEYS = ("name", "subject", "preheader", "layout", "text", "html", "weight") + CONTENT_FIELDS


def variant_indexes(post) -> list[int]:
    seen: list[int] = []
    for value in post.getlist("variant"):
        if value.isdigit() and int(value) < 100 and int(value) not in seen:
            seen.append(int(value))
    return seen[:MAX_VARIANTS]


def variant_blocks(post) -> list[dict]:
    """The variant blocks as the form holds them (for showing the form again)."""
    blocks = []
    for i in variant_indexes(post):
        block = {"i": i} | {key: post.get(f"v{i}_{key}", "") for key in VARIANT_KEYS}
        blocks.append(block)
    return blocks


def _blank(block: dict) -> bool:
    return not any(str(block.get(k, "")).strip() for k in ("subject", "headline", "body", "text", "html"))


def variant_from_block(block: dict, position: int) -> dict:
    variant = {
        "name": block["name"].strip() or chr(ord("A") + position),
        "subject": block["subject"],
        "preheader": block["preheader"],
        "weight": block["weight"] or 1,
    }
    if block["layout"] in LAYOUTS:
        variant["layout"] = block["layout"]
        variant["content"] = {k: block[k] for k in CONTENT_FIELDS}
    else:
        variant["text"], variant["html"] = block["text"], block["html"]
    return variant


def variants_from_post(post) -> list[dict]:
    # An empty block the marketer added and left is not a variant.
    return [variant_from_block(b, p) for p, b in enumerate(variant_blocks(post)) if not _blank(b)]


def spec_from_post(post) -> dict:
    """The campaign spec from the composer's form. ValueError on a number that is none."""
    spec = {
        "name": post.get("name", "").strip(),
        "segment": int(post["segment"]) if post.get("segment", "").isdigit() else None,
        "exclude_segments": [int(s) for s in post.getlist("exclude") if s.isdigit()],
        "variants": variants_from_post(post),
        "holdout": float(post.get("holdout") or 0) / 100,
        "send_at": post.get("send_at") or None,
        "timezone": post.get("timezone") or "",
        "attribution_days": post.get("attribution_days") or 7,
    }
    if post.get("offer_name", "").strip():
        spec["offer"] = {
            "name": post["offer_name"].strip(),
            "discount": post.get("offer_discount", ""),
            "code": post.get("offer_code", ""),
            "landing_url": post.get("offer_url", ""),
        }
    if post.get("quiet_start") and post.get("quiet_end"):
        spec["quiet_hours"] = {"start": post["quiet_start"], "end": post["quiet_end"]}
    if post.get("frequency_cap"):
        spec["frequency_cap"] = post["frequency_cap"]
    return spec


def form_from_campaign(campaign: Campaign) -> tuple[dict, list[dict]]:
    """A saved draft as the form's values and variant blocks (for editing it)."""
    offer = campaign.offer
    send_at = timezone.localtime(campaign.send_at, timezone.get_current_timezone()) if campaign.send_at else None
    form = {
        "name": campaign.name,
        "segment": str(campaign.segment_id),
        "exclude": [str(s) for s in campaign.exclusion_segments.values_list("id", flat=True)],
        "holdout": f"{campaign.holdout * 100:g}",
        "attribution_days": str(campaign.attribution_days),
        "send_at": send_at.strftime("%Y-%m-%dT%H:%M") if send_at else "",
        "timezone": timezone.get_current_timezone_name() if send_at else "UTC",
        "quiet_start": campaign.quiet_start.strftime("%H:%M") if campaign.quiet_start else "",
        "quiet_end": campaign.quiet_end.strftime("%H:%M") if campaign.quiet_end else "",
        "frequency_cap": str(campaign.frequency_cap or ""),
        "offer_name": offer.name if offer else "",
        "offer_discount": offer.discount if offer else "",
        "offer_code": offer.code if offer else "",
        "offer_url": offer.landing_url if offer else "",
    }
    blocks = []
    for i, v in enumerate(campaign.variants.order_by("position", "id")):
        block = {"i": i, "name": v.name, "subject": v.subject, "preheader": v.preheader, "layout": v.layout,
                 "weight": f"{v.weight:g}", "text": "" if v.layout else v.text, "html": "" if v.layout else v.html}
        block |= {k: (v.content or {}).get(k, "") for k in CONTENT_FIELDS}
        blocks.append(block)
    return form, blocks


def new_block(i: int) -> dict:
    return {"i": i, "name": chr(ord("A") + min(i, 25)), "subject": "", "preheader": "", "layout": "spotlight",
            "text": "", "html": "", "weight": "1", "headline": "", "body": "", "button": "Shop now", "brand": ""}
