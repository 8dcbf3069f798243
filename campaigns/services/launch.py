"""Launch: check everything, then freeze the audience into the ledger in one transaction.

It writes one row per customer (holdout rows included, arms assigned by a hash of the
experiment's salt and the customer id, computed in SQL), records the experiment's exposures,
and moves the campaign to `sending`. The send tasks are queued only once that has committed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from bisect import bisect_right

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
from experiments.assignment import key_bound_bytes, key_bounds, key_for
from experiments.models import Experiment
from experiments.services.definitions import experiment_create
from experiments.services.exposures import exposures_insert_from_sql

from .lifecycle import campaign_wake

S = LedgerEntry.Status
TABLE = LedgerEntry._meta.db_table
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


def _arm_sql(salt: str, bounds: list[int]) -> tuple[str, list, str]:
    """(per-row SQL for the inner SELECT over audience member a, its parameters, SQL for the
    1-based number of the member's arm from that value as s.h). The same arm as
    experiments.assignment.arm_for: key_bounds gives integer bounds on the hash's first 8
    bytes, so no floating point is involved."""
    if is_postgres():
        # The digest is compared as bytes: memcmp order is the key's unsigned order.
        whens = [f"WHEN s.h < '\\x{key_bound_bytes(b).hex()}'::bytea THEN {n}" for n, b in enumerate(bounds, start=1)]
        number = f"(CASE {' '.join(whens)} ELSE {len(bounds) + 1} END)" if whens else "1"
        return "sha256(convert_to(%s || ':' || a.id::text, 'UTF8'))", [salt], number
    # SQLite has no SHA-256: the same Python function, registered on the connection.
    connection.ensure_connection()
    connection.connection.create_function(
        "offerlab_arm", 3,
        lambda salt_, uid, text: bisect_right([int(b) for b in text.split(",") if b], key_for(salt_, uid)) + 1,
        deterministic=True,
    )
    return "offerlab_arm(%s, a.id, %s)", [salt, ",".join(str(b) for b in bounds)], "s.h"


def _case(column: str, values: list) -> tuple[str, list]:
    """CASE <column> WHEN 1 THEN <values[0]> ... END, the values as parameters."""
    if len(values) == 1:
        return "%s", list(values)
    whens = " ".join(f"WHEN {n} THEN %s" for n in range(1, len(values) + 1))
    return f"CASE {column} {whens} END", list(values)


_sequence: dict[str, str] = {}


def _ledger_id_sql() -> str:
    """The ledger's next id, taken in the SELECT so that the key can start with it."""
    if connection.alias not in _sequence:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
            _sequence[connection.alias] = cursor.fetchone()[0]
    return f"nextval('{_sequence[connection.alias]}'::regclass)"


def _ledger_insert(campaign: Campaign, arms, salt: str, run: int, now: datetime) -> int:
    """One INSERT ... SELECT of the audience into the ledger, each row with its arm, variant
    and status; members already in the ledger stay as they are."""
    audience_sql, audience_params = campaign_audience(campaign).values("id", "email").query.sql_with_params()
    names, bounds = key_bounds([(a[0], a[1]) for a in arms])
    hash_sql, hash_params, number = _arm_sql(salt, bounds)
    arm_case, arm_case_params = _case(number, names)
    variant_case, variant_params = _case(number, [a[3].id if a[3] is not None else None for a in arms])
    status_case, status_params = _case(number, [S.HELD_OUT if a[0] == HOLDOUT_ARM else S.PENDING for a in arms])
    if is_postgres():
        # The key starts with the row's id, so the unique index on it grows at its right
        # edge like the primary key's (a random key lands anywhere in an index as large as
        # the whole ledger); its second half is random, so keys stay unguessable.
        id_sql, id_column = f"{_ledger_id_sql()} AS lid,", "id, "
        key = "lpad(to_hex(s.lid), 16, '0') || left(replace(gen_random_uuid()::text, '-', ''), 16)"
        id_value = "s.lid, "
        fence = "OFFSET 0"  # one digest per row, not one per CASE above
    else:
        id_sql = id_column = id_value = fence = ""
        key = "lower(hex(randomblob(16)))"
    # A first run writes into a ledger holding none of the campaign's rows (its row is locked
    # and was a draft): a plain INSERT, not ON CONFLICT's check of the unique index before
    # each row. Later runs of a recurring campaign skip the members already in it.
    skip_present = "ON CONFLICT (campaign_id, customer_id) DO NOTHING" if run > 1 else ""
    sql = f"""
        INSERT INTO {TABLE} ({id_column}campaign_id, customer_id, variant_id, arm, email, status, run, assigned_at,
                             due_at, attempts, retries, batch, key, provider, provider_message_id, offer_code, error,
                             updated_at)
        SELECT {id_value}%s, s.id, {variant_case}, {arm_case}, s.email, {status_case}, %s, %s, %s,
               0, 0, '', {key}, '', '', '', '', %s
        FROM (SELECT {id_sql} a.id, a.email, {hash_sql} AS h FROM ({audience_sql}) a {fence}) s
        WHERE true
        {skip_present}
    """
    due = db_datetime(max(now, campaign.send_at or now))
    params = [campaign.id, *variant_params, *arm_case_params, *status_params, run, db_datetime(now), due,
              db_datetime(now), *hash_params, *audience_params]
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
    created = campaign.experiment_id is None
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
            checked=True,  # the rows above: existing customers, the experiment's own arms
            first=created,  # made just above, in this transaction: it has no exposure yet
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
