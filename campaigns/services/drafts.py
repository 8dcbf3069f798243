"""Draft campaigns: created from the JSON spec the API and `launch_campaign --spec` take,
previewed for one customer. Nothing here writes a ledger row."""

from __future__ import annotations

from datetime import datetime, time as dtime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.errors import CampaignError
from campaigns.messages import CUSTOMER_COLUMNS, message_context, render_budget_get, variant_compiled, variant_source
from campaigns.models import HOLDOUT_ARM, Campaign, Offer, Variant
from campaigns.rendering import RenderedMessage, TemplateOverBudget, TemplateProblem, variant_compile, variant_render
from campaigns.selectors import campaign_audience
from campaigns.selectors import offer_get
from campaigns.validation import from_email_check, lengths_check
from core.lookups import by_name_or_id
from core.schedules import ScheduleInvalid, cron_parse
from customers.models import Customer
from segments.models import Segment

from .offers import offer_create


def _segment(value) -> Segment:
    try:
        return by_name_or_id(Segment.objects.all(), value, "segment")
    except Segment.DoesNotExist as exc:
        raise CampaignError(str(exc)) from None


def _time(value, what: str) -> dtime | None:
    if value in (None, ""):
        return None
    try:
        return dtime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(f"{what} must be a time like 21:00, not {value!r}") from None


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


MAX_ATTRIBUTION_DAYS = 3650  # ten years, as experiments allow
SPEC_FIELDS = {
    "name", "segment", "exclude_segments", "offer", "variants", "holdout", "send_at", "timezone", "recurrence",
    "quiet_hours", "frequency_cap", "attribution_days", "from_email",
}
VARIANT_FIELDS = {"name", "subject", "preheader", "text", "html", "weight"}


@transaction.atomic
def campaign_create(spec: dict, *, user=None) -> Campaign:
    """A draft campaign from the JSON spec the API and `launch_campaign --spec` take."""
    if not isinstance(spec, dict):
        raise CampaignError("the campaign spec must be a JSON object")
    unknown = set(spec) - SPEC_FIELDS
    if unknown:
        raise CampaignError(f"unknown field(s): {', '.join(sorted(unknown))}")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise CampaignError("a campaign needs a name")
    lengths_check(Campaign, {"name": name})
    if Campaign.objects.filter(name=name).exists():
        raise CampaignError(f"a campaign named {name!r} already exists")
    from_email = from_email_check(spec.get("from_email") or "")
    if not spec.get("segment"):
        raise CampaignError("a campaign needs a segment")
    segment = _segment(spec["segment"])
    try:
        holdout = float(spec.get("holdout", 0.1) if spec.get("holdout") is not None else 0.1)
    except (TypeError, ValueError):
        raise CampaignError("holdout must be a number") from None
    if not 0 <= holdout < 1:
        raise CampaignError("holdout is a share of the audience: at least 0, below 1")
    variants = spec.get("variants") or []
    if not isinstance(variants, list) or not variants:
        raise CampaignError("a campaign needs at least one variant")
    names = []
    for i, v in enumerate(variants):
        if not isinstance(v, dict):
            raise CampaignError(f"variant {i + 1} must be an object")
        extra = set(v) - VARIANT_FIELDS
        if extra:
            raise CampaignError(f"variant {i + 1}: unknown field(s) {', '.join(sorted(extra))}")
        vname = str(v.get("name") or "").strip() or chr(ord("A") + i)
        if vname == HOLDOUT_ARM:
            raise CampaignError(f"{HOLDOUT_ARM!r} is the control's name; name the variant otherwise")
        names.append(vname)
        lengths_check(Variant, {"name": vname} | {k: v[k] for k in ("subject", "preheader", "text", "html") if isinstance(v.get(k), str)},
                      f"variant {vname[:100]!r}: ")
        try:
            weight = float(v.get("weight", 1) if v.get("weight") is not None else 1)
        except (TypeError, ValueError):
            raise CampaignError(f"variant {vname!r}: weight must be a number") from None
        if not weight > 0:
            raise CampaignError(f"variant {vname!r}: weight must be positive")
    if len(set(names)) != len(names):
        raise CampaignError(f"variant names repeat: {names}")
    offer = None
    if spec.get("offer"):
        if isinstance(spec["offer"], dict):
            offer = offer_create(spec["offer"], user=user)
        else:
            try:
                offer = offer_get(spec["offer"])
            except Offer.DoesNotExist as exc:
                raise CampaignError(str(exc)) from None
    quiet = spec.get("quiet_hours") or {}
    if quiet and not isinstance(quiet, dict):
        raise CampaignError('quiet_hours is {"start": "21:00", "end": "08:00"}')
    quiet_start, quiet_end = _time(quiet.get("start"), "quiet_hours.start"), _time(quiet.get("end"), "quiet_hours.end")
    if (quiet_start is None) != (quiet_end is None):
        raise CampaignError("quiet_hours needs both start and end")
    cap = spec.get("frequency_cap")
    if cap not in (None, "") and (not str(cap).isdigit() or not 1 <= int(cap) <= 1000):
        raise CampaignError("frequency_cap is a whole number of emails per 7 days, from 1 to 1,000")
    days = spec.get("attribution_days", 7) or 7
    if not str(days).isdigit() or not 1 <= int(days) <= MAX_ATTRIBUTION_DAYS:
        raise CampaignError(f"attribution_days is a whole number of days, from 1 to {MAX_ATTRIBUTION_DAYS}")
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
    try:
        with transaction.atomic():  # a savepoint: a concurrent create of the same name loses here, not with a 500
            campaign = Campaign.objects.create(
                name=name, offer=offer, segment=segment, holdout=holdout, send_at=_send_at(spec.get("send_at"), zone),
                recurrence=recurrence, recurrence_timezone=zone or settings.TIME_ZONE,
                quiet_start=quiet_start, quiet_end=quiet_end, frequency_cap=int(cap) if cap not in (None, "") else None,
                attribution_days=int(days), from_email=from_email, created_by=user,
            )
    except IntegrityError:
        raise CampaignError(f"a campaign named {name!r} already exists") from None
    for excluded in spec.get("exclude_segments") or []:
        campaign.exclusion_segments.add(_segment(excluded))
    for i, (vname, v) in enumerate(zip(names, variants)):
        variant = Variant.objects.create(
            campaign=campaign, name=vname, subject=v.get("subject") or "", preheader=v.get("preheader") or "",
            text=v.get("text") or "", html=v.get("html") or "",
            weight=float(v.get("weight", 1) if v.get("weight") is not None else 1), position=i,
        )
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
