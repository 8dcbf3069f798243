"""The campaign send ledger's writes: claim due rows, record results, expire leases,
reconcile, settle stopped campaigns.

The claim / record / lease / reconcile discipline itself (one UPDATE per batch, `FOR UPDATE
SKIP LOCKED`, attempt fencing, never a blind resend) is in ledger_rows.py, shared with the
automations' ledger; what is the campaign's own is here.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .ledger_rows import (  # noqa: F401  (Claimed, Outcome, backoff_seconds: this ledger's names too)
    ClaimCursor, Claimed, Outcome, backoff_seconds, claimed_split, leases_expire, outcomes_record, rows_claim,
    unknowns_reconcile,
)
from .models import Campaign, LedgerEntry

TABLE = LedgerEntry._meta.db_table
CAMPAIGN_TABLE = Campaign._meta.db_table
S = LedgerEntry.Status


def ledger_claim(
    campaign_id: int, limit: int, *, lease_seconds: float | None = None, cursor: ClaimCursor | None = None,
) -> tuple[str, list[Claimed]]:
    """Claim up to `limit` due rows of a campaign that is sending: (batch id, rows). A send
    loop passes its own `cursor` so that late claims skip the rows it already took."""
    batch, found = rows_claim(
        TABLE, limit=limit, lease_seconds=lease_seconds, cursor=cursor,
        pick_where=(
            f"s.campaign_id = %(campaign)s "
            f"AND EXISTS (SELECT 1 FROM {CAMPAIGN_TABLE} WHERE id = %(campaign)s AND state = %(state)s)"
        ),
        params={"campaign": campaign_id, "state": Campaign.State.SENDING},
    )
    rows = [claimed_split(row)[0] for row in found]
    rows.sort(key=lambda r: r.id)
    return batch, rows


def ledger_record(outcomes: list[Outcome], *, provider: str) -> int:
    """Write the outcomes of one claim in one statement; rows whose attempt is no longer
    current (or that are no longer `sending`) are left alone. Returns rows written."""
    return outcomes_record(TABLE, outcomes, provider=provider)


def ledger_expire_leases(now: datetime | None = None) -> int:
    """Rows whose worker died mid-send become `unknown`, to be reconciled, never resent blindly."""
    return leases_expire(LedgerEntry, now)


def ledger_reconcile(provider, *, max_batches: int = 50, now: datetime | None = None) -> dict:
    """Settle `unknown` rows by asking the provider what it holds of their batch."""
    now = now or timezone.now()
    summary = unknowns_reconcile(LedgerEntry, provider, max_batches=max_batches, now=now)
    # A requeued row of a campaign cancelled (or failed) meanwhile is never sent: settle it.
    summary["cancelled"] = ledger_settle_stopped(now)
    return summary


STOPPED_STATES = (Campaign.State.CANCELLED, Campaign.State.FAILED)


def ledger_settle_stopped(now: datetime | None = None) -> int:
    """Pending rows of stopped campaigns become `cancelled`. Cancelling a campaign cancels
    its pending rows at once, but rows in flight then (claimed by a worker that died, or
    recorded as a retry after the cancel) come back to `pending` later; nobody would
    claim them, so without this they would stay open for ever."""
    now = now or timezone.now()
    return LedgerEntry.objects.filter(status=S.PENDING, campaign__state__in=STOPPED_STATES).update(
        status=S.CANCELLED, updated_at=now, error="the campaign was stopped before this was sent"
    )


def ledger_cancel_pending(campaign_id: int) -> int:
    now = timezone.now()
    return LedgerEntry.objects.filter(campaign_id=campaign_id, status=S.PENDING).update(
        status=S.CANCELLED, updated_at=now
    )
