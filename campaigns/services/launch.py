"""Launch: check everything, then freeze the audience into the ledger.

It writes one row per customer (holdout rows included, arms assigned by a hash of the
experiment's salt and the customer id, computed in SQL), records the experiment's exposures
(launch_write.py: in one statement, or in ranges on several connections for a large first
launch), and moves the campaign to `sending` in a transaction that holds the campaign's row
lock throughout. The send tasks are queued only once that has committed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.messages import CUSTOMER_COLUMNS, message_context, render_budget_get, variant_source
from campaigns.models import HOLDOUT_ARM, Campaign, LedgerEntry, Variant
from campaigns.rendering import TemplateProblem, variant_compile, variant_render
from campaigns.selectors import campaign_audience
from campaigns.validation import from_email_check, template_empties
from core.db import statistics_refresh_queue
from core.schedules import periodic_task_set
from customers.models import AttributeDefinition
from experiments.models import Experiment, Exposure
from experiments.services.definitions import experiment_create

from .launch_write import audience_write
from .lifecycle import campaign_wake

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
    added = audience_write(campaign, arms, salt, run, now, experiment, created)
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
    # What is planned next (claims, the experiment's report) must see the rows written here.
    statistics_refresh_queue([LedgerEntry, Exposure] if experiment is not None else [LedgerEntry], added)
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
