"""The worker's loop: claim a batch, check it, render it, send it in one call, record it.

Nothing here holds a transaction across the network: the claim commits first, the provider
call runs outside any transaction, and the record is one conditional UPDATE afterwards.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from .caps import cap_release, cap_release_unsent, cap_reserve
from .ledger import ClaimCursor, Claimed, Outcome, backoff_seconds, ledger_claim, ledger_record
from .messages import landing_url_for, message_compose
from .models import Campaign, LedgerEntry, Variant
from .providers.base import FAILED, SENT, UNKNOWN, OutgoingMessage, Provider
from .providers.registry import provider_for
from .ratelimit import RateLimiter, limiter_for
from .rendering import TemplateOverBudget, TemplateProblem
from .services.lifecycle import campaign_fail, campaign_finish_if_done, campaign_heartbeat

logger = logging.getLogger(__name__)
S = LedgerEntry.Status
REREAD_SECONDS = 1.0  # how often a send loop reads its campaign again and gives its heartbeat


@dataclass
class SendStats:
    batches: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    deferred: int = 0
    suppressed: int = 0
    more: bool = False  # stopped by the time budget with work left
    counts: dict = field(default_factory=dict)


def quiet_until(now: datetime, zone: str, start, end) -> datetime | None:
    """If `now` falls in the quiet hours [start, end) of the customer's zone, when they end."""
    if start is None or end is None or start == end:
        return None
    try:
        tz = ZoneInfo(zone or "UTC")
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # over midnight: 21:00-08:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(now.tzinfo)


def batch_send(
    campaign: Campaign, variants: dict[int, Variant], batch: str, claimed: list[Claimed],
    provider: Provider, limiter: RateLimiter, stats: SendStats,
) -> None:
    now = timezone.now()
    outcomes: list[Outcome] = []
    # Slots are taken for the rows that would go out now (not suppressed, not in quiet
    # hours): under a per-customer lock, so campaigns and automations sending to the same
    # customer at the same instant cannot both pass the cap (caps.py).
    eligible = [
        (r.customer_id, r.key) for r in claimed
        if not r.suppressed and r.email
        and not quiet_until(now, r.customer["time_zone"], campaign.quiet_start, campaign.quiet_end)
    ]
    capped = cap_reserve(eligible, campaign.frequency_cap, now)
    landing = {vid: landing_url_for(campaign.offer, campaign, v) for vid, v in variants.items()}
    to_send = []
    for index, row in enumerate(claimed):
        customer = row.customer
        if row.suppressed or not row.email:
            outcomes.append(Outcome(row.id, row.attempts, S.SUPPRESSED, error="suppressed when its turn came"))
            stats.suppressed += 1
            continue
        later = quiet_until(now, customer["time_zone"], campaign.quiet_start, campaign.quiet_end)
        if row.customer_id in capped:
            later = max(later or now, capped[row.customer_id])
        if later:
            reason = "frequency cap" if row.customer_id in capped else "quiet hours"
            outcomes.append(Outcome(row.id, row.attempts, S.PENDING, error=f"deferred: {reason}", due_at=later))
            stats.deferred += 1
            continue
        variant = variants.get(row.variant_id)
        try:
            message, code = message_compose(
                campaign, variant, customer, key=row.key, email=row.email, batch=batch,
                landing_url=landing.get(row.variant_id, ""),
            )
        except TemplateOverBudget as exc:
            # The template is at fault, not this customer: stop the campaign now rather
            # than spend the budget again on every row (and hold the worker).
            outcomes.append(Outcome(row.id, row.attempts, S.FAILED, error=str(exc)))
            stats.failed += 1
            campaign_fail(campaign.id, f"stopped: {exc} (customer {customer.get('external_id')})")
            unsent = [r for r, _, _ in to_send] + claimed[index + 1 :]
            outcomes += [Outcome(r.id, r.attempts, S.CANCELLED, error="the campaign failed") for r in unsent]
            ledger_record(outcomes, provider=provider.name)
            cap_release([r.key for r in claimed])  # nothing of this batch goes out
            return
        except TemplateProblem as exc:
            outcomes.append(Outcome(row.id, row.attempts, S.FAILED, error=str(exc)))
            stats.failed += 1
            continue
        to_send.append((row, message, code))

    outcomes += chunks_send(to_send, provider, limiter, stats)
    ledger_record(outcomes, provider=provider.name)
    cap_release_unsent(claimed, outcomes)


def chunks_send(to_send: list[tuple[Claimed, OutgoingMessage, str]], provider: Provider, limiter: RateLimiter,
                stats: SendStats) -> list[Outcome]:
    """Send (row, message, offer code) triples in the provider's batches; the outcome of each
    row, for either ledger (campaigns and automations send the same way). Transient errors
    are due again after a backoff, up to the retry cap; a throttle holds every worker."""
    outcomes: list[Outcome] = []
    for start in range(0, len(to_send), max(provider.max_batch, 1)):
        chunk = to_send[start : start + provider.max_batch]
        results = provider.send([message for _, message, _ in chunk])
        throttled = None
        for (row, _, code), result in zip(chunk, results):
            if result.outcome == SENT:
                outcomes.append(Outcome(row.id, row.attempts, S.SENT, result.provider_message_id, "", code))
                stats.sent += 1
            elif result.outcome == FAILED:
                outcomes.append(Outcome(row.id, row.attempts, S.FAILED, error=result.error))
                stats.failed += 1
            elif result.outcome == UNKNOWN:
                outcomes.append(Outcome(row.id, row.attempts, S.UNKNOWN, error=result.error))
                stats.unknown += 1
            else:
                if result.throttled or result.retry_after:
                    # The provider asked everyone to slow down (or to wait): the shared
                    # limiter holds every worker, not only this batch's rows.
                    throttled = max(throttled or 0.0, result.retry_after or 0.0)
                if row.retries + 1 >= settings.CAMPAIGN_MAX_RETRIES:
                    outcomes.append(Outcome(row.id, row.attempts, S.FAILED, error=f"gave up after {row.retries + 1} tries: {result.error}"))
                    stats.failed += 1
                else:
                    due = timezone.now() + timedelta(seconds=backoff_seconds(row.retries, result.retry_after))
                    outcomes.append(Outcome(row.id, row.attempts, S.PENDING, error=result.error, due_at=due, retried=True))
                    stats.retried += 1
        if throttled is not None:
            limiter.throttle(throttled)
        elif results and all(r.outcome == SENT for r in results):
            limiter.recover()
    return outcomes


def send_setup(budget_seconds: float | None, batch_size: int | None,
               provider: Provider | None) -> tuple[float, Provider, bool, RateLimiter, int]:
    """What a send task works with, for campaigns and automations alike: its deadline, the
    provider (and whether this task opened it, so closes it), the provider's rate limiter,
    and the claim size (at most two of the provider's batches)."""
    deadline = time.monotonic() + (budget_seconds or settings.CAMPAIGN_TASK_SECONDS)
    own_provider = provider is None
    provider = provider or provider_for()
    size = min(batch_size or settings.CAMPAIGN_BATCH_SIZE, max(provider.max_batch, 1) * 2)
    return deadline, provider, own_provider, limiter_for(provider.account_key), size


def campaign_send(
    campaign_id: int, *, budget_seconds: float | None = None, batch_size: int | None = None,
    provider: Provider | None = None,
) -> SendStats:
    """Send due rows of one campaign until none are left or the time budget is spent."""
    stats = SendStats()
    deadline, provider, own_provider, limiter, size = send_setup(budget_seconds, batch_size, provider)
    cursor = ClaimCursor()  # each claim starts after the rows this loop took (ledger_rows.py)
    campaign, variants, looked, beat = None, {}, float("-inf"), float("-inf")
    try:
        while True:
            # The campaign and its variants are read again once a second, not per batch, and
            # the heartbeat is given at most once a second: a claim takes rows only while the
            # campaign is sending (ledger_claim checks its state in the same statement), so a
            # pause or a cancel still stops the next claim, and the empty claim ends this loop.
            # Per batch, the two reads and the heartbeat were 8% of a send worker's samples
            # (py-spy, 100,000 sends).
            if time.monotonic() - looked >= REREAD_SECONDS:
                campaign = Campaign.objects.select_related("offer").filter(id=campaign_id).first()
                if campaign is None or campaign.state != Campaign.State.SENDING:
                    break
                variants = {v.id: v for v in Variant.objects.filter(campaign_id=campaign.id)}
                looked = time.monotonic()
            # Tokens first, claim second: time spent waiting for the rate limit must not eat
            # into the rows' lease.
            limiter.acquire(size)
            batch, claimed = ledger_claim(campaign.id, size, cursor=cursor)
            if not claimed:
                campaign_finish_if_done(campaign.id)
                break
            stats.batches += 1
            stats.claimed += len(claimed)
            batch_send(campaign, variants, batch, claimed, provider, limiter, stats)
            if time.monotonic() - beat >= REREAD_SECONDS:
                campaign_heartbeat(campaign.id)
                beat = time.monotonic()
            if time.monotonic() >= deadline:
                stats.more = True  # hand over to a fresh task: nobody holds a worker for long
                break
    finally:
        if own_provider:
            provider.close()
    return stats

