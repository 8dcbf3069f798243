"""Writes for campaigns: offers, campaigns from a spec, launch, pause/resume/cancel, the pump.

Launch is one transaction: it freezes the audience into the ledger (one row per customer,
holdout rows included, arms assigned by a hash of the experiment's salt and the customer id,
computed in SQL), records the experiment's exposures, and moves the campaign to `sending`.
The send tasks are queued only once that has committed.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.models import AttributeDefinition, Customer, Suppression
from customers.services.suppression import customer_suppress
from experiments.services.definitions import experiment_create
from experiments.services.exposures import exposures_insert_from_sql
from experiments.assignment import bucket_for
from experiments.models import Experiment
from segments.models import Segment

from . import ledger
from .messages import CUSTOMER_COLUMNS, message_context, variant_compiled, variant_source
from .models import HOLDOUT_ARM, Campaign, LedgerEntry, Offer, Variant
from .rendering import RenderedMessage, TemplateProblem, variant_compile, variant_render
from .selectors import OPEN_STATUSES, campaign_audience, offer_get

logger = logging.getLogger(__name__)
S = LedgerEntry.Status
TABLE = LedgerEntry._meta.db_table
TWO_64 = 18446744073709551616


class CampaignError(ValueError):
    """A request that cannot be carried out; the message says why."""


# --------------------------------------------------------------------------- offers


OFFER_FIELDS = ("name", "description", "discount", "code_mode", "code", "landing_url", "utm")


def offer_create(spec: dict, *, user=None) -> Offer:
    name = str(spec.get("name") or "").strip()
    if not name:
        raise CampaignError("an offer needs a name")
    if Offer.objects.filter(name=name).exists():
        raise CampaignError(f"an offer named {name!r} already exists")
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
    return Offer.objects.create(
        name=name, description=spec.get("description") or "", discount=spec.get("discount") or "",
        code_mode=mode, code=spec.get("code") or "", landing_url=url, utm=utm, created_by=user,
    )


# --------------------------------------------------------------------------- campaigns


def _segment(value) -> Segment:
    text = str(value).strip()
    found = Segment.objects.filter(name=text).first()
    if found is None and text.isdigit():
        found = Segment.objects.filter(id=int(text)).first()
    if found is None:
        raise CampaignError(f"no segment named or numbered {text!r}")
    return found


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
    if Campaign.objects.filter(name=name).exists():
        raise CampaignError(f"a campaign named {name!r} already exists")
    if not spec.get("segment"):
        raise CampaignError("a campaign needs a segment")
    segment = _segment(spec["segment"])
    holdout = float(spec.get("holdout", 0.1) if spec.get("holdout") is not None else 0.1)
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
    if cap not in (None, "") and (not str(cap).isdigit() or int(cap) < 1):
        raise CampaignError("frequency_cap is a whole number of emails per 7 days, at least 1")
    days = spec.get("attribution_days", 7) or 7
    if not str(days).isdigit() or int(days) < 1:
        raise CampaignError("attribution_days is a whole number of days, at least 1")
    zone = spec.get("timezone") or ""
    if zone:
        _zone(zone)
    recurrence = str(spec.get("recurrence") or "").strip()
    if recurrence and len(recurrence.split()) != 5:
        raise CampaignError("recurrence is a crontab of five fields, e.g. \"0 9 * * 1\" (Mondays 09:00)")
    campaign = Campaign.objects.create(
        name=name, offer=offer, segment=segment, holdout=holdout, send_at=_send_at(spec.get("send_at"), zone),
        recurrence=recurrence, recurrence_timezone=zone or settings.TIME_ZONE,
        quiet_start=quiet_start, quiet_end=quiet_end, frequency_cap=int(cap) if cap not in (None, "") else None,
        attribution_days=int(days), from_email=spec.get("from_email") or "", created_by=user,
    )
    for excluded in spec.get("exclude_segments") or []:
        campaign.exclusion_segments.add(_segment(excluded))
    for i, (vname, v) in enumerate(zip(names, variants)):
        variant = Variant.objects.create(
            campaign=campaign, name=vname, subject=v.get("subject") or "", preheader=v.get("preheader") or "",
            text=v.get("text") or "", html=v.get("html") or "",
            weight=float(v.get("weight", 1) if v.get("weight") is not None else 1), position=i,
        )
        try:
            variant_compile(variant_source(variant))
        except TemplateProblem as exc:
            raise CampaignError(str(exc)) from None
    return campaign


def campaign_preview(campaign: Campaign, variant_name: str, customer: Customer) -> RenderedMessage:
    """What this customer would get from this variant (the unsubscribe link is a dummy)."""
    variant = campaign.variants.filter(name=variant_name).first()
    if variant is None:
        raise CampaignError(f"campaign {campaign.name!r} has no variant {variant_name!r}")
    row = {k: getattr(customer, k) for k in CUSTOMER_COLUMNS}
    try:
        return variant_render(variant_compiled(variant), message_context(campaign, variant, row, ""))
    except TemplateProblem as exc:
        raise CampaignError(str(exc)) from None


# --------------------------------------------------------------------------- launch checks


def campaign_check(campaign: Campaign, audience=None) -> list[str]:
    """Every reason the campaign cannot be sent to this audience, before a row is written:
    templates that do not compile, attributes nobody defined, audience members who lack an
    attribute a template needs (StrictUndefined would fail them half-way), and a trial
    render of each variant for a real member."""
    problems: list[str] = []
    variants = list(campaign.variants.all())
    if not variants:
        return ["the campaign has no variants"]
    audience = campaign_audience(campaign) if audience is None else audience
    known = set(AttributeDefinition.objects.values_list("name", flat=True))
    compiled = {}
    for variant in variants:
        try:
            compiled[variant.name] = variant_compile(variant_source(variant))
        except TemplateProblem as exc:
            problems.append(str(exc))
    for variant in variants:
        c = compiled.get(variant.name)
        if c is None:
            continue
        for attribute in sorted(c.attributes - known):
            problems.append(
                f"variant {variant.name!r} uses customer.attributes.{attribute}, which is not a known attribute"
                + (f" (known: {', '.join(sorted(known))})" if known else " (no attributes are defined)")
            )
        for attribute in sorted(c.required_attributes & known):
            lacking = audience.exclude(attributes__has_key=attribute)
            missing = lacking.count()
            if missing:
                example = lacking.values_list("external_id", flat=True).first()
                problems.append(
                    f"variant {variant.name!r} uses customer.attributes.{attribute}, but {missing:,} audience "
                    f"member(s) have no value for it (e.g. customer {example}); write "
                    f"{{{{ customer.attributes.{attribute} | default('...') }}}} or narrow the segment"
                )
    if problems:
        return problems
    sample = audience.values(*CUSTOMER_COLUMNS).first()
    if sample:
        for variant in variants:
            try:
                variant_render(compiled[variant.name], message_context(campaign, variant, sample, "preview"))
            except TemplateProblem as exc:
                problems.append(f"{exc} (trial render for customer {sample['external_id']})")
    return problems


# --------------------------------------------------------------------------- launch


def _arms(campaign: Campaign, variants: list[Variant]) -> list[tuple[str, float, bool, Variant | None]]:
    """(arm, weight, is control, variant) in assignment order: the variants, then the holdout."""
    total = sum(v.weight for v in variants)
    arms = [(v.name, (1 - campaign.holdout) * v.weight / total, False, v) for v in variants]
    if campaign.holdout > 0:
        arms.append((HOLDOUT_ARM, campaign.holdout, True, None))
    elif len(arms) > 1:
        arms[0] = (arms[0][0], arms[0][1], True, arms[0][3])  # no holdout: the first variant is the control
    return arms


def _experiment_for_launch(campaign: Campaign, arms) -> Experiment | None:
    """The campaign's experiment (arms = variants + holdout, primary metric conversion,
    its attribution window), created at the first launch and reused by later runs.
    None when there is nothing to compare (one variant and no holdout)."""
    if campaign.experiment_id:
        return campaign.experiment
    if len(arms) < 2:
        return None
    name = campaign.name
    if Experiment.objects.filter(name=name).exists():
        name = f"{campaign.name} (campaign {campaign.id})"
    return experiment_create(
        name,
        [(arm, weight, control) for arm, weight, control, _ in arms],
        primary_metric="conversion",
        secondary_metrics=["revenue"],
        attribution_days=campaign.attribution_days,
        salt=secrets.token_hex(8),
        description=f"Campaign {campaign.name!r}: variants against the holdout.",
    )


def _bucket_sql(salt_param: str = "%s") -> str:
    """The experiment's bucket of customer a.id, in SQL: the same number as
    experiments.assignment.bucket_for(salt, id) (first 8 bytes of SHA-256, over 2**64)."""
    if connection.vendor == "postgresql":
        h = f"('x' || substr(encode(sha256(convert_to({salt_param} || ':' || a.id::text, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint"
        # float8(u) / 2**64 is exactly Python's int / 2**64 (a power of two divides exactly).
        return f"((({h})::numeric + CASE WHEN ({h}) < 0 THEN {TWO_64} ELSE 0 END)::float8 / {TWO_64}.0::float8)"
    # SQLite: the same Python function, registered on the connection.
    connection.ensure_connection()
    connection.connection.create_function("offerlab_bucket", 2, lambda salt, uid: bucket_for(salt, uid), deterministic=True)
    return f"offerlab_bucket({salt_param}, a.id)"


def _ledger_insert(campaign: Campaign, arms, salt: str, run: int, now: datetime) -> int:
    """INSERT ... SELECT the audience into the ledger with its arms; existing rows stay."""
    audience_sql, audience_params = campaign_audience(campaign).values("id", "email").query.sql_with_params()
    names = [a[0] for a in arms]
    upper = [c / sum(a[1] for a in arms) for c in accumulate(a[1] for a in arms)]
    upper[-1] = 1.0
    arm_case = "CASE " + " ".join(f"WHEN s.b < {u!r} THEN %s" for u in upper[:-1]) + " ELSE %s END"
    arm_params = names[:-1] + [names[-1]]
    variant_ids = [str(a[3].id) if a[3] is not None else "NULL" for a in arms]
    variant_case = "CASE " + " ".join(f"WHEN s.b < {u!r} THEN {vid}" for u, vid in zip(upper[:-1], variant_ids)) + f" ELSE {variant_ids[-1]} END"
    holdout_last = arms[-1][0] == HOLDOUT_ARM
    if holdout_last:
        status_case = f"CASE WHEN s.b < {upper[-2]!r} THEN '{S.PENDING}' ELSE '{S.HELD_OUT}' END" if len(arms) > 1 else f"'{S.HELD_OUT}'"
    else:
        status_case = f"'{S.PENDING}'"
    if len(arms) == 1:
        arm_case, variant_case = "%s", variant_ids[0]
        arm_params = names
    key = "replace(gen_random_uuid()::text, '-', '')" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"
    bucket = _bucket_sql()
    sql = f"""
        INSERT INTO {TABLE} (campaign_id, customer_id, variant_id, arm, email, status, run, assigned_at, due_at,
                             attempts, retries, batch, key, provider, provider_message_id, offer_code, error, updated_at)
        SELECT %s, s.id, {variant_case}, {arm_case}, s.email, {status_case}, %s, %s, %s,
               0, 0, '', {key}, '', '', '', '', %s
        FROM (SELECT a.id, a.email, {bucket} AS b FROM ({audience_sql}) a) s
        WHERE true
        ON CONFLICT (campaign_id, customer_id) DO NOTHING
    """
    due = ledger.db_datetime(max(now, campaign.send_at or now))
    params = [campaign.id, *arm_params, run, ledger.db_datetime(now), due, ledger.db_datetime(now)]
    bucket_params = [salt, salt] if connection.vendor == "postgresql" else [salt]
    params += bucket_params + list(audience_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


@dataclass
class LaunchResult:
    campaign: Campaign
    state: str
    added: int = 0


def campaign_launch(campaign: Campaign, *, now: datetime | None = None) -> LaunchResult:
    """Launch now, or schedule for send_at. Checks everything before any ledger row exists."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(id=campaign.id)
        if campaign.state not in (Campaign.State.DRAFT, Campaign.State.SCHEDULED):
            raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}: only a draft or scheduled one launches")
        problems = campaign_check(campaign)
        if problems:
            raise CampaignError("cannot launch: " + "; ".join(problems))
        if campaign.recurrence and campaign.periodic_task_id is None:
            _periodic_task_create(campaign)
        if campaign.send_at and campaign.send_at > now:
            campaign.state = Campaign.State.SCHEDULED
            campaign.save(update_fields=["state", "periodic_task", "updated_at"])
            return LaunchResult(campaign, campaign.state)
        added = _campaign_run(campaign, now)
        return LaunchResult(campaign, campaign.state, added)


def _campaign_run(campaign: Campaign, now: datetime) -> int:
    """One run (inside the caller's transaction): experiment, ledger rows, exposures, state."""
    variants = list(campaign.variants.order_by("position", "id"))
    arms = _arms(campaign, variants)
    experiment = _experiment_for_launch(campaign, arms)
    if experiment is not None:
        salt = experiment.salt
        # A later run must assign with the arms the experiment was created with.
        existing = [(a.name, a.weight) for a in experiment.arms.order_by("position", "id")]
        by_name = {a[0]: a for a in arms}
        arms = [(n, w, by_name[n][2], by_name[n][3]) for n, w in existing if n in by_name]
    else:
        salt = f"campaign-{campaign.id}"
    run = campaign.runs + 1
    added = _ledger_insert(campaign, arms, salt, run, now)
    if experiment is not None and added:
        # Exposures at assignment time, holdout included: outcomes are orders after it.
        exposures_insert_from_sql(
            experiment,
            f"SELECT customer_id, arm, assigned_at AS exposed_at FROM {TABLE} WHERE campaign_id = %s AND run = %s",
            [campaign.id, run],
        )
    campaign.experiment = experiment
    campaign.runs = run
    campaign.state = Campaign.State.SENDING
    campaign.launched_at = campaign.launched_at or now
    campaign.heartbeat_at = now
    campaign.completed_at = None
    campaign.last_error = ""
    campaign.save()
    transaction.on_commit(lambda: campaign_wake(campaign.id))
    return added


def _periodic_task_create(campaign: Campaign) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    minute, hour, day_of_month, month_of_year, day_of_week = campaign.recurrence.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone=campaign.recurrence_timezone or settings.TIME_ZONE,
    )
    campaign.periodic_task = PeriodicTask.objects.create(
        name=f"campaign {campaign.id}: {campaign.name}"[:200], task="campaigns.tasks.campaign_run_task",
        crontab=schedule, args=json.dumps([campaign.id]), start_time=campaign.send_at,
    )


def campaign_run_recurring(campaign_id: int, *, now: datetime | None = None) -> int:
    """A recurring campaign's next run: the segment's members not yet in its ledger."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(id=campaign_id).first()
        if campaign is None or campaign.state not in (Campaign.State.SCHEDULED, Campaign.State.SENDING, Campaign.State.COMPLETED):
            return 0
        if campaign.send_at and campaign.send_at > now:
            return 0
        problems = campaign_check(campaign)
        if problems:
            campaign.last_error = "run skipped: " + "; ".join(problems)
            campaign.save(update_fields=["last_error", "updated_at"])
            return 0
        return _campaign_run(campaign, now)


# --------------------------------------------------------------------------- controls


def campaign_wake(campaign_id: int, workers: int | None = None) -> None:
    """Queue send tasks; each claims batches until nothing is due, then stops."""
    from .tasks import campaign_send_task

    for _ in range(workers or settings.CAMPAIGN_SEND_PARALLELISM):
        campaign_send_task.delay(campaign_id)


def campaign_heartbeat(campaign_id: int) -> None:
    now = timezone.now()
    Campaign.objects.filter(id=campaign_id).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=1))
    ).update(heartbeat_at=now)


def campaign_finish_if_done(campaign_id: int) -> bool:
    """Sending -> completed (a recurring one: back to scheduled) once no row is open."""
    if LedgerEntry.objects.filter(campaign_id=campaign_id, status__in=OPEN_STATUSES).exists():
        return False
    campaign = Campaign.objects.filter(id=campaign_id).only("recurrence").first()
    if campaign is None:
        return False
    target = Campaign.State.SCHEDULED if campaign.recurrence else Campaign.State.COMPLETED
    return bool(
        Campaign.objects.filter(id=campaign_id, state=Campaign.State.SENDING).update(
            state=target, completed_at=timezone.now()
        )
    )


def _transition(campaign: Campaign, allowed: tuple[str, ...], target: str) -> Campaign:
    updated = Campaign.objects.filter(id=campaign.id, state__in=allowed).update(state=target, updated_at=timezone.now())
    campaign.refresh_from_db()
    if not updated:
        raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}: cannot go to {target}")
    return campaign


def campaign_pause(campaign: Campaign) -> Campaign:
    """Workers stop claiming at once; messages already in a provider call finish."""
    return _transition(campaign, (Campaign.State.SENDING, Campaign.State.SCHEDULED), Campaign.State.PAUSED)


def campaign_resume(campaign: Campaign) -> Campaign:
    target = Campaign.State.SENDING if campaign.runs else Campaign.State.SCHEDULED
    campaign = _transition(campaign, (Campaign.State.PAUSED,), target)
    if target == Campaign.State.SENDING:
        transaction.on_commit(lambda: campaign_wake(campaign.id))
    return campaign


@transaction.atomic
def campaign_cancel(campaign: Campaign) -> Campaign:
    """Nothing more is sent: pending rows are cancelled, recurring runs stop."""
    campaign = _transition(
        campaign,
        (Campaign.State.DRAFT, Campaign.State.SCHEDULED, Campaign.State.SENDING, Campaign.State.PAUSED),
        Campaign.State.CANCELLED,
    )
    ledger.ledger_cancel_pending(campaign.id)
    if campaign.periodic_task_id:
        type(campaign.periodic_task).objects.filter(id=campaign.periodic_task_id).update(enabled=False)
    return campaign


# --------------------------------------------------------------------------- the pump


def campaign_pump(*, now: datetime | None = None, provider=None) -> dict:
    """What celery beat runs every few seconds, so that nothing depends on one message:
    starts scheduled campaigns that are due, turns expired leases into `unknown`, settles
    `unknown` rows with the provider, wakes campaigns whose workers went quiet, and closes
    campaigns that are done."""
    from .providers.registry import provider_for

    now = now or timezone.now()
    summary = {"started": 0, "expired": 0, "woken": 0, "finished": 0}
    for campaign in Campaign.objects.filter(state=Campaign.State.SCHEDULED, runs=0, send_at__lte=now):
        try:
            campaign_launch(campaign, now=now)
            summary["started"] += 1
        except CampaignError as exc:
            Campaign.objects.filter(id=campaign.id).update(last_error=str(exc)[:2000])
    summary["expired"] = ledger.ledger_expire_leases(now)
    if LedgerEntry.objects.filter(status=S.UNKNOWN).exists():
        own = provider is None
        provider = provider or provider_for()
        try:
            summary["reconciled"] = ledger.ledger_reconcile(provider, now=now)
        finally:
            if own:
                provider.close()
    stale = now - timedelta(seconds=settings.CAMPAIGN_STALE_SECONDS)
    for campaign in Campaign.objects.filter(state=Campaign.State.SENDING):
        due = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING, due_at__lte=now).exists()
        if due and (campaign.heartbeat_at is None or campaign.heartbeat_at < stale):
            Campaign.objects.filter(id=campaign.id).update(heartbeat_at=now)
            campaign_wake(campaign.id)
            summary["woken"] += 1
        elif not due and campaign_finish_if_done(campaign.id):
            summary["finished"] += 1
    return summary


# --------------------------------------------------------------------------- unsubscribe


def unsubscribe_apply(row: LedgerEntry, *, source: str = "link") -> Suppression:
    """Suppress exactly the customer this message went to; running it twice changes nothing."""
    return customer_suppress(
        row.customer, Suppression.Reason.UNSUBSCRIBED, detail=f"campaign {row.campaign.name}",
        source=f"unsubscribe:{source}",
    )
