"""The automations' send loop: claim due step sends, apply exits and conditions, hold for
quiet hours and frequency caps, render, send, record, advance.

As for campaigns (sending.py), nothing holds a transaction across the network: the claim
commits first, the provider call runs outside any transaction, and the record (with the
entries' exits) is one transaction afterwards.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .ledger import ClaimedSend, sends_claim, sends_record
from ..caps import cap_release_unsent, cap_reserve
from ..ledger_rows import ClaimCursor, Outcome
from ..messages import (
    customer_context, landing_url_for, offer_code_for, offer_context, render_budget_get, variant_compiled,
)
from ..models import Automation, AutomationEntry, AutomationSend, AutomationStep, AutomationVariant
from ..providers.base import OutgoingMessage, Provider
from ..rendering import TemplateProblem, variant_render
from ..sending import SendStats, chunks_send, quiet_until, send_setup
from ..services.automations.advance import sends_advance
from ..unsubscribe import unsubscribe_headers, unsubscribe_url

logger = logging.getLogger(__name__)
S = AutomationSend.Status
E = AutomationEntry.Status


@dataclass
class Exit:
    entry_id: int
    reason: str


def _exit_reason(automation: Automation, row: ClaimedSend) -> str:
    rules = automation.exit_rules or []
    if "ordered" in rules and row.ordered:
        return "ordered"
    if "unsubscribed" in rules and row.suppressed:
        return "unsubscribed"
    if "left_segment" in rules and not row.in_segment:
        return "left_segment"
    return ""


def message_for(automation: Automation, variant: AutomationVariant, row: ClaimedSend, batch: str):
    code = offer_code_for(automation.offer, row.customer_id)
    url = unsubscribe_url(row.key)
    context = {
        "customer": customer_context(row.customer),
        "offer": offer_context(automation.offer, landing_url_for(automation.offer, automation, variant), code),
        "unsubscribe_url": url,
    }
    rendered = variant_render(variant_compiled(variant), context, render_budget_get())
    message = OutgoingMessage(
        key=row.key, to=row.email, from_email=automation.from_email or settings.DEFAULT_FROM_EMAIL,
        subject=rendered.subject, text=rendered.text, html=rendered.html, headers=unsubscribe_headers(url),
        metadata={"offerlab_id": row.key, "offerlab_batch": batch, "offerlab_automation": str(automation.id),
                  "offerlab_step": str(row.step_index)},
        tag=f"automation-{automation.id}",
    )
    return message, code


def batch_send(batch: str, claimed: list[ClaimedSend], provider: Provider, limiter, stats: SendStats) -> None:
    now = timezone.now()
    automations = {a.id: a for a in Automation.objects.select_related("offer").filter(
        id__in={r.automation_id for r in claimed})}
    steps = {s.id: s for s in AutomationStep.objects.filter(id__in={r.step_id for r in claimed})}
    variants = {v.id: v for v in AutomationVariant.objects.filter(id__in={r.variant_id for r in claimed if r.variant_id})}
    outcomes: list[Outcome] = []
    exits: list[Exit] = []
    candidates: list[ClaimedSend] = []
    for row in claimed:
        automation = automations[row.automation_id]
        reason = _exit_reason(automation, row)
        if reason:
            exits.append(Exit(row.entry_id, reason))
            outcomes.append(Outcome(row.id, row.attempts, S.CANCELLED, error=f"exited: {reason}"))
            stats.counts["exited"] = stats.counts.get("exited", 0) + 1
            continue
        if row.suppressed or not row.email:
            outcomes.append(Outcome(row.id, row.attempts, S.SUPPRESSED, error="suppressed when its turn came"))
            stats.suppressed += 1
            continue
        if steps[row.step_id].unless == "ordered" and row.ordered:
            outcomes.append(Outcome(row.id, row.attempts, S.SKIPPED, error="skipped: ordered since entry"))
            continue
        later = quiet_until(now, row.customer["time_zone"], automation.quiet_start, automation.quiet_end)
        if later:
            outcomes.append(Outcome(row.id, row.attempts, S.PENDING, error="deferred: quiet hours", due_at=later))
            stats.deferred += 1
            continue
        candidates.append(row)
    # The cap of each automation applies to its own rows; every send takes a slot.
    by_cap: dict[int | None, list[ClaimedSend]] = defaultdict(list)
    for row in candidates:
        by_cap[automations[row.automation_id].frequency_cap].append(row)
    refused: dict[int, object] = {}
    for cap, rows in by_cap.items():
        for customer, due in cap_reserve([(r.customer_id, r.key) for r in rows], cap, now).items():
            refused[customer] = due
    to_send = []
    for row in candidates:
        if row.customer_id in refused:
            outcomes.append(Outcome(row.id, row.attempts, S.PENDING, error="deferred: frequency cap",
                                    due_at=refused[row.customer_id]))
            stats.deferred += 1
            continue
        try:
            message, code = message_for(automations[row.automation_id], variants[row.variant_id], row, batch)
        except TemplateProblem as exc:
            outcomes.append(Outcome(row.id, row.attempts, S.FAILED, error=str(exc)))
            stats.failed += 1
            continue
        to_send.append((row, message, code))

    outcomes += chunks_send(to_send, provider, limiter, stats)
    with transaction.atomic():
        # The exits and the results commit together: an entry is never left active with its
        # step cancelled, nor exited with its step still pending.
        for reason in {x.reason for x in exits}:
            AutomationEntry.objects.filter(id__in=[x.entry_id for x in exits if x.reason == reason],
                                           status=E.ACTIVE).update(status=E.EXITED, exit_reason=reason, finished_at=now)
        sends_record(outcomes, provider=provider.name)
        sends_advance(entry_ids=sorted({r.entry_id for r in claimed}), now=timezone.now())
    cap_release_unsent(claimed, outcomes)


def automation_send(*, budget_seconds: float | None = None, batch_size: int | None = None,
                    provider: Provider | None = None) -> SendStats:
    """Send due step sends of every active automation until none are due or the budget is spent."""
    stats = SendStats()
    deadline, provider, own_provider, limiter, size = send_setup(budget_seconds, batch_size, provider)
    cursor = ClaimCursor()  # each claim starts after the rows this loop took (ledger_rows.py)
    try:
        while True:
            limiter.acquire(size)
            batch, claimed = sends_claim(size, cursor=cursor)
            if not claimed:
                break
            stats.batches += 1
            stats.claimed += len(claimed)
            batch_send(batch, claimed, provider, limiter, stats)
            if time.monotonic() >= deadline:
                stats.more = True
                break
    finally:
        if own_provider:
            provider.close()
    return stats
