"""The send ledger's writes: claim due rows, record results, expire leases, reconcile.

Set-based SQL on purpose: a batch is claimed with one UPDATE and recorded with one UPDATE,
whatever its size. Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never
take the same row and never wait for each other; SQLite has one writer at a time, so the
same conditional UPDATE is enough there.

Every claim bumps the row's `attempts`; a worker records its result only where the row is
still `sending` with the attempt it claimed. A worker that lost its lease (it hung, its
row was reconciled and claimed again) therefore changes nothing.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db import db_datetime, is_postgres
from customers.models import Consent, Customer, Suppression

from .models import Campaign, LedgerEntry

TABLE = LedgerEntry._meta.db_table
CAMPAIGN_TABLE = Campaign._meta.db_table
CUSTOMER_TABLE = Customer._meta.db_table
SUPPRESSION_TABLE = Suppression._meta.db_table
CONSENT_TABLE = Consent._meta.db_table
CUSTOMER_SQL = (
    "c.external_id, c.email, c.name, c.country, c.time_zone, c.signup_date, c.attributes, "
    f"(EXISTS (SELECT 1 FROM {SUPPRESSION_TABLE} s WHERE s.customer_id = c.id) "
    f"OR EXISTS (SELECT 1 FROM {CONSENT_TABLE} k WHERE k.customer_id = c.id AND NOT k.granted))"
)
S = LedgerEntry.Status


@dataclass
class Claimed:
    id: int
    customer_id: int
    variant_id: int | None
    email: str
    key: str
    attempts: int
    retries: int
    customer: dict  # what a template may see, read in the same statement as the claim
    suppressed: bool  # re-checked at claim time: an unsubscribe mid-campaign is honoured


def ledger_claim(campaign_id: int, limit: int, *, lease_seconds: float | None = None) -> tuple[str, list[Claimed]]:
    """Claim up to `limit` due rows of a campaign that is sending: (batch id, rows)."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds or settings.CAMPAIGN_LEASE_SECONDS)
    batch = uuid.uuid4().hex
    pg = is_postgres()
    lock = "FOR UPDATE SKIP LOCKED" if pg else ""
    # The picked ids are MATERIALIZED first: as a plain `id IN (subquery)` PostgreSQL may
    # rescan the subquery per row and ignore its LIMIT.
    # PostgreSQL returns the customer (and whether they are suppressed) with the claim;
    # SQLite's RETURNING sees only the updated table, so it reads them right after.
    customer_join = f", {CUSTOMER_TABLE} c" if pg else ""
    customer_where = f" AND c.id = {TABLE}.customer_id" if pg else ""
    customer_columns = f", {CUSTOMER_SQL}" if pg else ""
    sql = f"""
        WITH picked AS MATERIALIZED (
            SELECT id FROM {TABLE}
            WHERE campaign_id = %(campaign)s AND status = %(pending)s AND due_at <= %(now)s
              AND EXISTS (SELECT 1 FROM {CAMPAIGN_TABLE} WHERE id = %(campaign)s AND state = %(state)s)
            ORDER BY due_at, id
            LIMIT %(limit)s
            {lock}
        )
        UPDATE {TABLE} SET status = %(sending)s, attempts = attempts + 1, lease_until = %(lease)s,
               batch = %(batch)s, updated_at = %(now)s
        FROM picked{customer_join}
        WHERE {TABLE}.id = picked.id AND {TABLE}.status = %(pending)s{customer_where}
        RETURNING {TABLE}.id, {TABLE}.customer_id, {TABLE}.variant_id, {TABLE}.email, {TABLE}.key,
                  {TABLE}.attempts, {TABLE}.retries{customer_columns}
    """
    params = {
        "sending": S.SENDING, "pending": S.PENDING, "lease": db_datetime(lease), "batch": batch,
        "now": db_datetime(now), "campaign": campaign_id, "state": Campaign.State.SENDING, "limit": limit,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
        if not pg and found:
            ids = [row[1] for row in found]
            cursor.execute(
                f"SELECT c.id, {CUSTOMER_SQL} FROM {CUSTOMER_TABLE} c WHERE c.id IN ({', '.join(['%s'] * len(ids))})", ids
            )
            extra = {row[0]: row[1:] for row in cursor.fetchall()}
            found = [row + extra[row[1]] for row in found if row[1] in extra]
        rows = [_claimed(row) for row in found]
    rows.sort(key=lambda r: r.id)
    return batch, rows


def _claimed(row: tuple) -> Claimed:
    (id_, customer_id, variant_id, email, key, attempts, retries,
     external_id, customer_email, name, country, zone, signup, attributes, suppressed) = row
    if isinstance(attributes, str):  # SQLite hands JSON back as text
        attributes = json.loads(attributes or "{}")
    customer = {
        "id": customer_id, "external_id": external_id, "email": customer_email, "name": name,
        "country": country, "time_zone": zone, "signup_date": signup, "attributes": attributes or {},
    }
    return Claimed(id_, customer_id, variant_id, email, key, attempts, retries, customer, bool(suppressed))


@dataclass
class Outcome:
    """What became of one claimed row."""

    id: int
    attempts: int
    status: str
    provider_message_id: str = ""
    error: str = ""
    offer_code: str = ""
    due_at: datetime | None = None  # pending again: when
    retried: bool = False  # counts toward the retry cap


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider asked."""
    base = settings.CAMPAIGN_RETRY_BASE_SECONDS * (2 ** min(retries, 12))
    delay = random.uniform(base / 2, base)
    delay = min(delay, settings.CAMPAIGN_RETRY_MAX_SECONDS)
    if retry_after:
        delay = max(delay, retry_after)
    return delay


def ledger_record(outcomes: list[Outcome], *, provider: str) -> int:
    """Write the outcomes of one claim in one statement; rows whose attempt is no longer
    current (or that are no longer `sending`) are left alone. Returns rows written."""
    if not outcomes:
        return 0
    now = timezone.now()
    columns = [
        [o.id for o in outcomes], [o.attempts for o in outcomes], [o.status for o in outcomes],
        [o.provider_message_id[:255] for o in outcomes], [o.error[:2000] for o in outcomes],
        [o.offer_code[:64] for o in outcomes], [db_datetime(o.due_at) for o in outcomes],
        [1 if o.retried else 0 for o in outcomes],
    ]
    if is_postgres():
        # Eight array parameters, whatever the batch size: nothing for the driver to parse.
        source = (
            "SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::timestamptz[], %s::integer[])"
        )
        params: list = columns
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(outcomes))
        params = [value for row in zip(*columns) for value in row]
    sql = f"""
        WITH v (id, attempts, status, pmid, error, code, due, retried) AS ({source})
        UPDATE {TABLE} SET
            status = v.status,
            provider_message_id = CASE WHEN v.pmid <> '' THEN v.pmid ELSE {TABLE}.provider_message_id END,
            error = v.error,
            offer_code = CASE WHEN v.code <> '' THEN v.code ELSE {TABLE}.offer_code END,
            sent_at = CASE WHEN v.status = %s THEN %s ELSE {TABLE}.sent_at END,
            due_at = COALESCE(v.due, {TABLE}.due_at),
            retries = {TABLE}.retries + v.retried,
            lease_until = NULL,
            provider = %s,
            updated_at = %s
        FROM v
        WHERE {TABLE}.id = v.id AND {TABLE}.attempts = v.attempts AND {TABLE}.status = %s
    """
    params += [S.SENT, db_datetime(now), provider, db_datetime(now), S.SENDING]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not is_postgres():
            cursor.execute("SELECT changes()")  # rowcount is -1 after WITH ... UPDATE there
            return cursor.fetchone()[0]
        return cursor.rowcount


def ledger_expire_leases(now: datetime | None = None) -> int:
    """Rows whose worker died mid-send: we cannot know if the request went out, so they
    become `unknown` and are reconciled with the provider, never resent blindly."""
    now = now or timezone.now()
    return LedgerEntry.objects.filter(status=S.SENDING, lease_until__lt=now).update(
        status=S.UNKNOWN, lease_until=None, updated_at=now,
        error="the worker stopped before recording a result (lease expired)",
    )


def ledger_reconcile(provider, *, max_batches: int = 50, now: datetime | None = None) -> dict:
    """Settle `unknown` rows by asking the provider what it holds of their batch.

    Found: sent. Not found: nothing went out, so the row is due again. A provider that
    cannot tell leaves the rows unknown until a webhook (or a person) settles them.
    """
    now = now or timezone.now()
    settle_after = now - timedelta(seconds=settings.CAMPAIGN_RECONCILE_AFTER_SECONDS)
    batches = list(
        LedgerEntry.objects.filter(status=S.UNKNOWN, updated_at__lt=settle_after)
        .exclude(batch="")
        .values_list("batch", flat=True)
        .distinct()[:max_batches]
    )
    summary = {"batches": 0, "sent": 0, "requeued": 0, "undecided": 0}
    for batch in batches:
        rows = list(LedgerEntry.objects.filter(status=S.UNKNOWN, batch=batch).values("id", "key", "attempts"))
        try:
            found = provider.lookup(batch)
        except SoftTimeLimitExceeded:
            raise  # the task's own time limit, not the provider's failure
        except Exception as exc:  # the provider may be down: try again next time
            found = None
            error = f"reconcile lookup failed: {exc}"[:500]
        else:
            error = ""
        summary["batches"] += 1
        if found is None:
            # Ask again later, not on every pump tick.
            LedgerEntry.objects.filter(id__in=[r["id"] for r in rows], status=S.UNKNOWN).update(
                updated_at=now, error=error or "awaiting the provider's webhook (it cannot be asked)"
            )
            summary["undecided"] += len(rows)
            continue
        for row in rows:
            qs = LedgerEntry.objects.filter(id=row["id"], status=S.UNKNOWN, attempts=row["attempts"])
            if row["key"] in found:
                summary["sent"] += qs.update(
                    status=S.SENT, provider_message_id=found[row["key"]] or "", sent_at=now, updated_at=now,
                    error="",
                )
            else:
                summary["requeued"] += qs.update(
                    status=S.PENDING, due_at=now, updated_at=now,
                    error="the provider does not have it: sent again",
                )
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
