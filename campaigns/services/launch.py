"""Launch: check everything, then freeze the audience into the ledger in one transaction.

It writes one row per customer (holdout rows included, arms assigned by a hash of the
experiment's salt and the customer id, computed in SQL), records the experiment's exposures,
and moves the campaign to `sending`. The send tasks are queued only once that has committed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.messages import CUSTOMER_COLUMNS, message_context, render_budget_get, variant_source
from campaigns.models import HOLDOUT_ARM, Campaign, LedgerEntry, Variant
from campaigns.rendering import TemplateProblem, variant_compile, variant_render
from campaigns.selectors import campaign_audience
from campaigns.validation import from_email_check, template_empties
from core.db import db_datetime, is_postgres
from core.schedules import periodic_task_set
from customers.models import AttributeDefinition
from experiments.assignment import bucket_for
from experiments.models import Experiment
from experiments.services.definitions import experiment_create
from experiments.services.exposures import exposures_insert_from_sql

from .lifecycle import campaign_wake

S = LedgerEntry.Status
TABLE = LedgerEntry._meta.db_table
TWO_64 = 18446744073709551616
RUN_MIN_GAP_SECONDS = 50  # a crontab fires at most once a minute


def campaign_check(campaign: Campaign, audience=None, warnings: list[str] | None = None) -> list[str]:
    """Every reason the campaign cannot be sent to this audience, before a row is written:
    templates that do not compile, attributes nobody defined, audience members who lack an
    attribute a template needs (StrictUndefined would fail them half-way), and a trial
    render of each variant for a real member. Values printed blank for every recipient are
    problems; blank for some are appended to `warnings` when a list is given (the confirm step)."""
    problems: list[str] = []
    try:
        from_email_check(campaign.from_email)  # one stored before the check existed must not be used
    except CampaignError as exc:
        problems.append(str(exc))
    variants = list(campaign.variants.all())
    if not variants:
        return ["the campaign has no variants"]
    audience = campaign_audience(campaign) if audience is None else audience
    known = set(AttributeDefinition.objects.values_list("name", flat=True))
    compiled = {}
    for variant in variants:
        try:
            compiled[variant.name] = variant_compile(variant_source(variant), render_budget_get())
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
    blank_for_all, blank_for_some = template_empties(campaign, compiled, audience)
    problems += blank_for_all
    if warnings is not None:
        warnings += blank_for_some
    if problems:
        return problems
    sample = audience.values(*CUSTOMER_COLUMNS).first()
    if sample:
        for variant in variants:
            try:
                variant_render(
                    compiled[variant.name], message_context(campaign, variant, sample, "preview"), render_budget_get()
                )
            except TemplateProblem as exc:
                problems.append(f"{exc} (trial render for customer {sample['external_id']})")
    return problems


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
    if is_postgres():
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
    key = "replace(gen_random_uuid()::text, '-', '')" if is_postgres() else "lower(hex(randomblob(16)))"
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
    due = db_datetime(max(now, campaign.send_at or now))
    params = [campaign.id, *arm_params, run, db_datetime(now), due, db_datetime(now)]
    bucket_params = [salt, salt] if is_postgres() else [salt]
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
            campaign.periodic_task = _periodic_task_create(campaign)
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
    campaign.last_run_at = now
    campaign.heartbeat_at = now
    campaign.completed_at = None
    campaign.last_error = ""
    campaign.save()
    campaign_wake(campaign.id)  # queued once this transaction commits
    return added


def _periodic_task_create(campaign: Campaign):
    """The beat row that runs a recurring campaign (the recurrence was checked at create)."""
    return periodic_task_set(
        f"campaign {campaign.id}: {campaign.name}"[:200], "campaigns.tasks.campaign_run_task", [campaign.id],
        {"crontab": campaign.recurrence, "timezone": campaign.recurrence_timezone or settings.TIME_ZONE},
        description=f"Recurring runs of campaign {campaign.name!r}: new segment members only.",
        start_time=campaign.send_at,
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
        if campaign.last_run_at and campaign.last_run_at > now - timedelta(seconds=RUN_MIN_GAP_SECONDS):
            # Two beat processes (an operator's mistake) both fire this tick: the second,
            # waiting on the row lock above, finds the run done and adds nothing.
            return 0
        problems = campaign_check(campaign)
        if problems:
            campaign.last_error = "run skipped: " + "; ".join(problems)
            campaign.save(update_fields=["last_error", "updated_at"])
            return 0
        return _campaign_run(campaign, now)
