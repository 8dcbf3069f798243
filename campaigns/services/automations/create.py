"""automation_create (from the JSON spec `automation_create --spec FILE` takes) and
automation_edit_steps (a new version: entries already in the flow finish theirs)."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.messages import render_budget_get
from campaigns.models import (
    HOLDOUT_ARM, Automation, AutomationStep, AutomationVariant, AutomationVersion, Offer,
)
from campaigns.rendering import TemplateProblem, VariantSource, variant_compile
from campaigns.selectors import offer_get
from campaigns.validation import (
    attribution_days_clean, frequency_cap_clean, from_email_check, holdout_clean, lengths_check, quiet_hours_clean,
    weight_clean,
)
from core.lookups import by_name_or_id
from segments.models import Segment

from ..offers import offer_create

SPEC_FIELDS = {
    "name", "trigger", "audience", "holdout", "reentry_days", "exit", "include_current", "steps", "offer",
    "quiet_hours", "frequency_cap", "attribution_days", "from_email",
}
STEP_FIELDS = {"wait_hours", "wait_days", "unless", "variants"}
VARIANT_FIELDS = {"name", "subject", "preheader", "text", "html", "weight"}
# What an exit rule or a step's `unless` may name; each is checked when a step's turn comes.
EXIT_RULES = ("ordered", "left_segment", "unsubscribed")
UNLESS_CONDITIONS = ("ordered",)
MAX_STEPS = 20


def _segment(value, what: str) -> Segment:
    try:
        return by_name_or_id(Segment.objects.all(), value, "segment")
    except Segment.DoesNotExist as exc:
        raise CampaignError(f"{what}: {exc}") from None


def _trigger(trigger) -> dict:
    if not isinstance(trigger, dict) or len(trigger) != 1:
        raise CampaignError('trigger is one of {"segment": NAME}, {"event": KIND}, '
                            '{"date": {"attribute": "signup_date", "offset_days": 30}}')
    kind, value = next(iter(trigger.items()))
    if kind == "segment":
        return {"trigger": Automation.Trigger.SEGMENT, "trigger_segment": _segment(value, "trigger.segment")}
    if kind == "event":
        text = str(value or "").strip()
        if not text or len(text) > 64:
            raise CampaignError("trigger.event is an event kind (1 to 64 characters), e.g. \"browse\"")
        return {"trigger": Automation.Trigger.EVENT, "trigger_event": text}
    if kind == "date":
        if not isinstance(value, dict) or not str(value.get("attribute") or "").strip():
            raise CampaignError('trigger.date is {"attribute": "signup_date", "offset_days": 30}')
        offset = value.get("offset_days", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > 3650:
            raise CampaignError("trigger.date.offset_days is a whole number of days (negative: before the date)")
        return {"trigger": Automation.Trigger.DATE, "date_attribute": str(value["attribute"]).strip()[:100],
                "date_offset_days": offset}
    raise CampaignError(f"unknown trigger {kind!r}: use segment, event or date")


def steps_clean(steps) -> list[dict]:
    """The steps as the models take them; CampaignError naming the step and field otherwise."""
    if not isinstance(steps, list) or not steps:
        raise CampaignError("an automation needs at least one step")
    if len(steps) > MAX_STEPS:
        raise CampaignError(f"at most {MAX_STEPS} steps")
    out = []
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise CampaignError(f"{where} must be an object")
        extra = set(step) - STEP_FIELDS
        if extra:
            raise CampaignError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        try:
            wait = float(step.get("wait_hours") or 0) + 24 * float(step.get("wait_days") or 0)
        except (TypeError, ValueError):
            raise CampaignError(f"{where}.wait_hours must be a number") from None
        if not 0 <= wait <= 24 * 3650:
            raise CampaignError(f"{where}.wait_hours must be between 0 and ten years")
        unless = str(step.get("unless") or "").strip()
        if unless and unless not in UNLESS_CONDITIONS:
            raise CampaignError(f"{where}.unless: {unless!r} is not a condition (use {', '.join(UNLESS_CONDITIONS)})")
        variants = step.get("variants") or []
        if not isinstance(variants, list) or not variants:
            raise CampaignError(f"{where} needs at least one variant")
        clean_variants = []
        for j, v in enumerate(variants):
            vwhere = f"{where}.variants[{j}]"
            if not isinstance(v, dict):
                raise CampaignError(f"{vwhere} must be an object")
            extra = set(v) - VARIANT_FIELDS
            if extra:
                raise CampaignError(f"{vwhere}: unknown field(s) {', '.join(sorted(extra))}")
            name = str(v.get("name") or "").strip() or chr(ord("a") + j)
            if name == HOLDOUT_ARM:
                raise CampaignError(f"{vwhere}: {HOLDOUT_ARM!r} is the control's name")
            if not str(v.get("subject") or "").strip():
                raise CampaignError(f"{vwhere}.subject is required")
            fields = {k: str(v.get(k) or "") for k in ("subject", "preheader", "text", "html")}
            lengths_check(AutomationVariant, {"name": name} | fields, f"{vwhere}: ")
            weight = weight_clean(v.get("weight"), f"{vwhere}.")
            try:
                variant_compile(VariantSource(name=name, **fields), render_budget_get())
            except TemplateProblem as exc:
                raise CampaignError(f"{vwhere}: {exc}") from None
            clean_variants.append({"name": name, "weight": weight, **fields})
        names = [v["name"] for v in clean_variants]
        if len(set(names)) != len(names):
            raise CampaignError(f"{where}: variant names repeat: {names}")
        out.append({"wait_hours": wait, "unless": unless, "variants": clean_variants})
    return out


def _version_write(automation: Automation, steps: list[dict]) -> AutomationVersion:
    number = (automation.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = AutomationVersion.objects.create(automation=automation, number=number)
    for i, step in enumerate(steps):
        row = AutomationStep.objects.create(version=version, index=i, wait_hours=step["wait_hours"], unless=step["unless"])
        AutomationVariant.objects.bulk_create([
            AutomationVariant(step=row, position=j, **variant) for j, variant in enumerate(step["variants"])
        ])
    automation.current_version = version
    automation.save(update_fields=["current_version"])
    return version


@transaction.atomic
def automation_create(spec: dict, *, user=None, now: datetime | None = None) -> Automation:
    """An active automation from its spec. Its watermarks start at what exists now, so only
    what happens from now on triggers it (or the segment's current members too, with
    `include_current`)."""
    from customers.models import Event
    from segments.models import SegmentRefresh

    from .triggers import automation_enter_current

    now = now or timezone.now()
    if not isinstance(spec, dict):
        raise CampaignError("the automation spec must be a JSON object")
    unknown = set(spec) - SPEC_FIELDS
    if unknown:
        raise CampaignError(f"unknown field(s): {', '.join(sorted(unknown))}")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise CampaignError("an automation needs a name")
    lengths_check(Automation, {"name": name})
    trigger = _trigger(spec.get("trigger"))
    audience = _segment(spec["audience"], "audience") if spec.get("audience") else None
    holdout = holdout_clean(spec.get("holdout"), "entries")
    reentry = spec.get("reentry_days")
    if reentry is not None and (isinstance(reentry, bool) or not isinstance(reentry, int) or not 0 < reentry <= 3650):
        raise CampaignError("reentry_days is null (once ever) or a whole number of days from 1 to 3,650")
    exits = spec.get("exit") or []
    if isinstance(exits, str):
        exits = [exits]
    bad = [e for e in exits if e not in EXIT_RULES]
    if bad:
        raise CampaignError(f"exit: unknown rule(s) {bad} (use {', '.join(EXIT_RULES)})")
    if "left_segment" in exits and trigger["trigger"] != Automation.Trigger.SEGMENT:
        raise CampaignError("exit: left_segment needs a segment trigger")
    include_current = bool(spec.get("include_current"))
    if include_current and trigger["trigger"] != Automation.Trigger.SEGMENT:
        raise CampaignError("include_current is for a segment trigger")
    steps = steps_clean(spec.get("steps"))
    offer = None
    if spec.get("offer"):
        if isinstance(spec["offer"], dict):
            offer = offer_create(spec["offer"], user=user)
        else:
            try:
                offer = offer_get(spec["offer"])
            except Offer.DoesNotExist as exc:
                raise CampaignError(str(exc)) from None
    quiet_start, quiet_end = quiet_hours_clean(spec.get("quiet_hours"))
    cap = frequency_cap_clean(spec.get("frequency_cap"))
    days = attribution_days_clean(spec.get("attribution_days", 7))
    watermarks = {}
    if trigger["trigger"] == Automation.Trigger.SEGMENT:
        last = SegmentRefresh.objects.filter(segment=trigger["trigger_segment"]).order_by("-id").values_list("id", flat=True).first()
        watermarks["refresh_watermark"] = last or 0
    elif trigger["trigger"] == Automation.Trigger.EVENT:
        top = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        watermarks["event_watermark"] = watermarks["event_floor"] = top
    try:
        with transaction.atomic():
            automation = Automation.objects.create(
                name=name, audience_segment=audience, holdout=holdout, reentry_days=reentry, exit_rules=list(exits),
                include_current=include_current, offer=offer, from_email=from_email_check(spec.get("from_email") or ""),
                quiet_start=quiet_start, quiet_end=quiet_end, frequency_cap=cap, attribution_days=days, salt=secrets.token_hex(8), started_at=now, created_by=user,
                **trigger, **watermarks,
            )
            _version_write(automation, steps)
    except IntegrityError:
        raise CampaignError(f"an automation named {name!r} already exists") from None
    if include_current:
        automation_enter_current(automation, now=now)
    return automation
