"""The automations' send ledger: claim due step sends, record results, expire leases,
reconcile. The campaign ledger's discipline on AutomationSend, in one copy for both
(campaigns/ledger_rows.py):

- a claim is one UPDATE over rows picked `FOR UPDATE SKIP LOCKED`, bumping `attempts` and
  setting a lease; two workers never hold the same row;
- a result is recorded only while the row is still `sending` with the attempt that claimed
  it, so a worker that lost its lease changes nothing;
- a lease that runs out makes the row `unknown`, and the provider is asked (by the batch id
  every message carries) whether it holds it: found is sent, not found is due again.

PostgreSQL only (automations are).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from customers.models import Order
from segments.models import Membership, Segment

from ..ledger_rows import (
    ClaimCursor, Claimed, Outcome, claimed_split, leases_expire, outcomes_record, rows_claim, unknowns_reconcile,
)
from ..models import Automation, AutomationEntry, AutomationSend

TABLE = AutomationSend._meta.db_table
ENTRY = AutomationEntry._meta.db_table
AUTOMATION = Automation._meta.db_table
ORDER = Order._meta.db_table
MEMBERSHIP = Membership._meta.db_table
SEGMENT = Segment._meta.db_table
S = AutomationSend.Status


@dataclass
class ClaimedSend(Claimed):
    automation_id: int = 0
    step_id: int = 0
    step_index: int = 0
    entry_id: int = 0
    ordered: bool = False  # an order since the entry: for the exit rule and `unless`
    in_segment: bool = True  # still in the trigger segment (segment triggers): for `left_segment`


def sends_claim(
    limit: int, *, lease_seconds: float | None = None, cursor: ClaimCursor | None = None,
) -> tuple[str, list[ClaimedSend]]:
    """Claim up to `limit` due sends of active automations: (batch id, rows). A send loop
    passes its own `cursor` so that late claims skip the rows it already took."""
    batch, found = rows_claim(
        TABLE, limit=limit, lease_seconds=lease_seconds, params={}, cursor=cursor,
        pick_where=f"EXISTS (SELECT 1 FROM {AUTOMATION} a WHERE a.id = s.automation_id AND a.state = 'active')",
        join_from=f", {ENTRY} e, {AUTOMATION} a",
        join_where=f" AND e.id = {TABLE}.entry_id AND a.id = {TABLE}.automation_id",
        extra_columns=f""",
            {TABLE}.automation_id, {TABLE}.step_id, {TABLE}.step_index, {TABLE}.entry_id,
            EXISTS (SELECT 1 FROM {ORDER} o WHERE o.customer_id = c.id AND o.ordered_at >= e.entered_at),
            (a.trigger_segment_id IS NULL OR EXISTS (
                SELECT 1 FROM {MEMBERSHIP} m WHERE m.segment_id = a.trigger_segment_id AND m.customer_id = c.id
                  AND m.version = (SELECT g.current_version FROM {SEGMENT} g WHERE g.id = a.trigger_segment_id)))""",
    )
    rows = []
    for row in found:
        claimed, (automation_id, step_id, step_index, entry_id, ordered, in_segment) = claimed_split(row)
        rows.append(ClaimedSend(**vars(claimed), automation_id=automation_id, step_id=step_id, step_index=step_index,
                                entry_id=entry_id, ordered=bool(ordered), in_segment=bool(in_segment)))
    rows.sort(key=lambda r: r.id)
    return batch, rows


def sends_record(outcomes: list[Outcome], *, provider: str) -> int:
    """Write the outcomes of one claim in one statement; stale attempts are left alone."""
    return outcomes_record(TABLE, outcomes, provider=provider)


def sends_expire_leases(now: datetime | None = None) -> int:
    """A worker died mid-send: the row may or may not have gone out, so it is `unknown`."""
    return leases_expire(AutomationSend, now)


def sends_reconcile(provider, *, max_batches: int = 50, now: datetime | None = None) -> dict:
    """Settle `unknown` rows by asking the provider what it holds of their batch."""
    return unknowns_reconcile(AutomationSend, provider, max_batches=max_batches, now=now)
