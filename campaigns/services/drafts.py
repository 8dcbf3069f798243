"""Draft campaigns: created from the JSON spec the API and `launch_campaign --spec` take,
previewed for one customer. Nothing here writes a ledger row."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.errors import CampaignError
from campaigns.layouts import LAYOUTS, LayoutProblem, content_clean, layout_html, layout_text
from campaigns.messages import CUSTOMER_COLUMNS, message_context, render_budget_get, variant_compiled, variant_source
from campaigns.models import HOLDOUT_ARM, Campaign, Offer, Variant
from campaigns.rendering import RenderedMessage, TemplateOverBudget, TemplateProblem, variant_compile, variant_render
from campaigns.selectors import campaign_audience
from campaigns.selectors import offer_get
from campaigns.validation import (  # noqa: F401  (MAX_ATTRIBUTION_DAYS: this module's name for it too)
    MAX_ATTRIBUTION_DAYS, attribution_days_clean, frequency_cap_clean, from_email_check, holdout_clean, lengths_check,
    quiet_hours_clean, weight_clean,
)
from core.lookups import by_name_or_id
from core.schedules import ScheduleInvalid, cron_parse
from customers.models import Customer
from segments.models import Segment

from .offers import offer_clean, offer_create, offer_update


def _segment(value) -> Segment:
    try:
        return by_name_or_id(Segment.objects.all(), value, "segment")
    except Segment.DoesNotExist as exc:
        raise CampaignError(str(exc)) from None


def _send_at(value, zone: str | None) -> datetime | None:
    if value in (None, "", "now"):
        return None
    when = parse_datetime(str(value)) if not isinstance(value, datetime) else value
    if when is None:
        raise CampaignError(f"send_at must be an ISO date and time, not {value!r}")
    if timezone.is_naive(when):
        if not zone:
            raise CampaignError("send_at needs a time zone: add an offset (2026-05-01T09:00:00+02:00) or \"timezone\"")
        when = when.replace(tzinfo=_zone(zone))
    return when


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise CampaignError(f"unknown time zone {name!r}") from None


SPEC_FIELDS = {
    "name", "segment", "exclude_segments", "offer", "variants", "holdout", "send_at", "timezone", "recurrence",
    "quiet_hours", "frequency_cap", "attribution_days", "from_email",
}
VARIANT_FIELDS = {"name", "subject", "preheader", "text", "html", "weight", "layout", "content"}


@transaction.atomic
def campaign_create(spec: dict, *, user=None) -> Campaign:
    """A draft campaign from the JSON spec the API and `launch_campaign --spec` take."""
    return _campaign_save(spec, user=user)


@transaction.atomic
def campaign_update(campaign: Campaign, spec: dict, *, user=None) -> Campaign:
    """Edit a draft (or a launch that failed before writing anything) from a whole spec:
    the same checks as creating one; its variants are replaced. Nothing launched changes."""
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    if not campaign_editable(campaign):
        raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}: only a draft can be edited")
    return _campaign_save(spec, user=user, campaign=campaign)


def campaign_editable(campaign: Campaign) -> bool:
    return campaign.state == Campaign.State.DRAFT or (campaign.state == Campaign.State.FAILED and campaign.runs == 0)


def _variant_clean(i: int, v) -> dict:
    """One variant of the spec, checked; a layout's HTML and text are generated here."""
    if not isinstance(v, dict):
        raise CampaignError(f"variant {i + 1} must be an object")
    extra = set(v) - VARIANT_FIELDS
    if extra:
        raise CampaignError(f"variant {i + 1}: unknown field(s) {', '.join(sorted(extra))}")
    vname = str(v.get("name") or "").strip() or chr(ord("A") + i)
    if vname == HOLDOUT_ARM:
        raise CampaignError(f"{HOLDOUT_ARM!r} is the control's name; name the variant otherwise")
    texts = {k: v[k] for k in ("subject", "preheader", "text", "html") if isinstance(v.get(k), str)}
    weight = weight_clean(v.get("weight"), f"variant {vname!r}: ")
    clean = {"name": vname, "subject": "", "preheader": "", "text": "", "html": "", "layout": "", "content": {},
             "weight": weight} | texts
    layout = str(v.get("layout") or "").strip()
    if layout:
        if clean["html"].strip():
            raise CampaignError(f"variant {vname!r}: a layout writes the HTML; leave html empty or drop the layout")
        try:
            clean["content"] = content_clean(v.get("content"))
            clean["html"] = layout_html(layout, clean["content"])
            clean["text"] = clean["text"] if clean["text"].strip() else layout_text(layout, clean["content"])
        except LayoutProblem as exc:
            raise CampaignError(f"variant {vname!r}: {exc}") from None
        clean["layout"] = layout
    elif v.get("content"):
        raise CampaignError(f"variant {vname!r}: content goes with a layout ({', '.join(LAYOUTS)})")
    lengths_check(Variant, {"name": vname} | {k: clean[k] for k in ("subject", "preheader", "text", "html")},
                  f"variant {vname[:100]!r}: ")
    return clean


def _offer_for(spec_offer, campaign: Campaign | None, user) -> Offer | None:
    if not spec_offer:
        return None
    if not isinstance(spec_offer, dict):
        try:
            return offer_get(spec_offer)
        except Offer.DoesNotExist as exc:
            raise CampaignError(str(exc)) from None
    current = campaign.offer if campaign is not None else None
    if current is not None and current.name == str(spec_offer.get("name") or "").strip() \
            and not current.campaigns.exclude(id=campaign.id).exists():
        # Editing a draft's own offer: change it in place rather than refuse its name as taken.
        return offer_update(current, spec_offer)
    return offer_create(spec_offer, user=user)


def _campaign_save(spec: dict, *, user=None, campaign: Campaign | None = None) -> Campaign:
    if not isinstance(spec, dict):
        raise CampaignError("the campaign spec must be a JSON object")
    unknown = set(spec) - SPEC_FIELDS
    if unknown:
        raise CampaignError(f"unknown field(s): {', '.join(sorted(unknown))}")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise CampaignError("a campaign needs a name")
    lengths_check(Campaign, {"name": name})
    if Campaign.objects.filter(name=name).exclude(id=campaign.id if campaign else None).exists():
        raise CampaignError(f"a campaign named {name!r} already exists")
    from_email = from_email_check(spec.get("from_email") or "")
    if not spec.get("segment"):
        raise CampaignError("a campaign needs a segment")
    segment = _segment(spec["segment"])
    holdout = holdout_clean(spec.get("holdout"), "audience")
    variants = spec.get("variants") or []
    if not isinstance(variants, list) or not variants:
        raise CampaignError("a campaign needs at least one variant")
    cleaned = [_variant_clean(i, v) for i, v in enumerate(variants)]
    names = [v["name"] for v in cleaned]
    if len(set(names)) != len(names):
        raise CampaignError(f"variant names repeat: {names}")
    offer = _offer_for(spec.get("offer"), campaign, user)
    quiet_start, quiet_end = quiet_hours_clean(spec.get("quiet_hours"))
    cap = frequency_cap_clean(spec.get("frequency_cap"))
    days = attribution_days_clean(spec.get("attribution_days", 7))
    zone = spec.get("timezone") or ""
    if zone:
        _zone(zone)
    recurrence = str(spec.get("recurrence") or "").strip()
    lengths_check(Campaign, {"recurrence": recurrence, "recurrence_timezone": zone}, "")
    if recurrence:
        try:
            cron_parse(recurrence)
        except ScheduleInvalid as exc:
            raise CampaignError(f"recurrence: {exc} (e.g. \"0 9 * * 1\": Mondays 09:00)") from None
    fields = dict(
        name=name, offer=offer, segment=segment, holdout=holdout, send_at=_send_at(spec.get("send_at"), zone),
        recurrence=recurrence, recurrence_timezone=zone or settings.TIME_ZONE,
        quiet_start=quiet_start, quiet_end=quiet_end, frequency_cap=cap, attribution_days=days, from_email=from_email,
    )
    try:
        with transaction.atomic():  # a savepoint: a concurrent create of the same name loses here, not with a 500
            if campaign is None:
                campaign = Campaign.objects.create(**fields, created_by=user)
            else:
                for key, value in fields.items():
                    setattr(campaign, key, value)
                campaign.state, campaign.last_error = Campaign.State.DRAFT, ""
                campaign.save()
                campaign.variants.all().delete()
                campaign.exclusion_segments.clear()
    except IntegrityError:
        raise CampaignError(f"a campaign named {name!r} already exists") from None
    for excluded in spec.get("exclude_segments") or []:
        campaign.exclusion_segments.add(_segment(excluded))
    for i, v in enumerate(cleaned):
        variant = Variant.objects.create(campaign=campaign, position=i, **v)
        try:
            variant_compile(variant_source(variant), render_budget_get())
        except TemplateProblem as exc:
            raise CampaignError(str(exc)) from None
    variants_trial(campaign)
    return campaign


SAMPLE_CUSTOMER = {
    "id": 1, "external_id": "sample", "email": "sample@example.com", "name": "Sample Customer", "country": "",
    "time_zone": "UTC", "signup_date": None, "attributes": {},
}


def variants_trial(campaign: Campaign) -> None:
    """Render each variant for a sample audience member (or a made-up one): a template
    that runs over the render budget is refused now, not found out by the worker. Other
    problems (a missing attribute...) are the launch check's to report."""
    sample = campaign_audience(campaign).order_by("id").values(*CUSTOMER_COLUMNS).first() or SAMPLE_CUSTOMER
    for variant in campaign.variants.all():
        try:
            variant_render(variant_compiled(variant), message_context(campaign, variant, sample, ""), render_budget_get())
        except TemplateOverBudget as exc:
            raise CampaignError(f"{exc} (trial render for customer {sample['external_id']})") from None
        except TemplateProblem:
            continue


def campaign_preview(campaign: Campaign, variant_name: str, customer: Customer) -> RenderedMessage:
    """What this customer would get from this variant (the unsubscribe link is a dummy)."""
    variant = campaign.variants.filter(name=variant_name).first()
    if variant is None:
        raise CampaignError(f"campaign {campaign.name!r} has no variant {variant_name!r}")
    row = {k: getattr(customer, k) for k in CUSTOMER_COLUMNS}
    try:
        return variant_render(variant_compiled(variant), message_context(campaign, variant, row, ""), render_budget_get())
    except TemplateProblem as exc:
        raise CampaignError(str(exc)) from None


def spec_variant_preview(spec: dict, variant: dict, customer: Customer) -> RenderedMessage:
    """A variant of a draft not saved yet (the composer's live preview), rendered for one
    customer through the same sandbox and budget as a send. Nothing is written."""
    clean = _variant_clean(0, variant)
    offer = None
    if isinstance(spec.get("offer"), dict):
        offer = Offer(**offer_clean(spec["offer"]))  # unsaved: only read for its fields
    elif spec.get("offer"):
        try:
            offer = offer_get(spec["offer"])
        except Offer.DoesNotExist as exc:
            raise CampaignError(str(exc)) from None
    campaign = Campaign(name=str(spec.get("name") or "draft"), offer=offer)
    unsaved = Variant(campaign=campaign, **clean)
    row = {k: getattr(customer, k) for k in CUSTOMER_COLUMNS}
    try:
        compiled = variant_compile(variant_source(unsaved), render_budget_get())
        return variant_render(compiled, message_context(campaign, unsaved, row, ""), render_budget_get())
    except TemplateProblem as exc:
        raise CampaignError(str(exc)) from None
