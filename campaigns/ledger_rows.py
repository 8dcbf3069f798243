"""What both send ledgers do the same way: the campaigns' (LedgerEntry, ledger.py) and the
automations' (AutomationSend, automations/ledger.py). One copy of the exactly-once discipline,
so a fix to it reaches both:

- a claim is one UPDATE over rows picked `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one
  writer at a time, so the same conditional UPDATE is enough there), bumping `attempts` and
  setting a lease, and returning the customer (and whether they are suppressed) with the row;
- a result is recorded only while the row is still `sending` with the attempt that claimed
  it, so a worker that lost its lease (it hung, its row was reconciled and claimed again)
  changes nothing;
- a lease that runs out makes the row `unknown`, and the provider is asked (by the batch id
  every message carries) whether it holds it: found is sent, not found is due again, never
  resent blindly.

Set-based SQL on purpose: a batch is claimed with one UPDATE and recorded with one UPDATE,
whatever its size. The two ledgers' rows share the columns used here (status, due_at,
attempts, retries, lease_until, batch, key, email, customer, variant, provider,
provider_message_id, offer_code, error, sent_at, updated_at) and the status names.
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
from django.db.models import Model
from django.utils import timezone

from core.db import db_datetime, is_postgres
from customers.models import Consent, Customer, Suppression

CUSTOMER_TABLE = Customer._meta.db_table
CUSTOMER_SQL = (
    "c.external_id, c.email, c.name, c.country, c.time_zone, c.signup_date, c.attributes, "
    f"(EXISTS (SELECT 1 FROM {Suppression._meta.db_table} s WHERE s.customer_id = c.id) "
    f"OR EXISTS (SELECT 1 FROM {Consent._meta.db_table} k WHERE k.customer_id = c.id AND NOT k.granted))"
)
# The status names both ledgers use (LedgerEntry.Status and AutomationSend.Status agree on them).
PENDING, SENDING, UNKNOWN, SENT = "pending", "sending", "unknown", "sent"


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
    suppressed: bool  # re-checked at claim time: an unsubscribe mid-send is honoured


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


@dataclass
class ClaimCursor:
    """Where one send loop's claims have got to: the (due_at, id) of the last row it took.

    Why: a claimed row leaves the partial index of pending rows only when a vacuum removes
    its entry, and one vacuum of a big ledger takes longer than a campaign's send, so a claim
    that starts from the front of the index walks past every row already claimed: at
    1,000,000 recipients, 4,779 buffers (26 ms) per claim of 500 late in the send, and the
    send fell to 1,200-1,500 msg/s. Starting after the last row this loop took skips them.
    A row due behind the cursor (its due_at set by another host's clock, a claim that
    rolled back, a row skipped while another claim held its lock) is not lost: when the
    cursor finds nothing, the claim scans again from the front and starts over from there.
    """

    due_at: datetime | None = None
    id: int = 0

    def advance(self, rows: list[tuple]) -> None:
        """Move past the last of `rows` ((id, due_at) pairs) in claim order (none: stay)."""
        if not rows:
            return
        last = max((due_at, id_) for id_, due_at in rows)
        self.due_at, self.id = last


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider asked."""
    base = settings.CAMPAIGN_RETRY_BASE_SECONDS * (2 ** min(retries, 12))
    delay = random.uniform(base / 2, base)
    delay = min(delay, settings.CAMPAIGN_RETRY_MAX_SECONDS)
    if retry_after:
        delay = max(delay, retry_after)
    return delay


def rows_claim(
    table: str, *, pick_where: str, params: dict, limit: int, lease_seconds: float | None = None,
    join_from: str = "", join_where: str = "", extra_columns: str = "", cursor: ClaimCursor | None = None,
) -> tuple[str, list[tuple]]:
    """Claim up to `limit` due rows of `table` (aliased `s` in `pick_where`): (batch id, rows).

    Each row is (id, customer_id, variant_id, email, key, attempts, retries, the customer's
    columns of CUSTOMER_SQL ending with `suppressed`, then `extra_columns`); read it with
    `claimed_split`. `join_from`/`join_where`/`extra_columns` (PostgreSQL only) join more
    tables to the claimed row, e.g. the automation's entry; `{table}` names the claimed row there.
    `cursor` (PostgreSQL; one per send loop) starts the pick after the rows this loop took
    before, and is moved past the rows taken now (ClaimCursor says why).
    """
    pg = is_postgres()
    if cursor is None or not pg:  # SQLite drops an index entry with its row: nothing to skip
        return _rows_claim(table, pick_where, params, limit, lease_seconds, join_from, join_where, extra_columns)
    after = cursor.due_at is not None
    batch, found = _rows_claim(table, pick_where, params, limit, lease_seconds, join_from, join_where,
                               extra_columns, with_due=True, after=(cursor.due_at, cursor.id) if after else None)
    if not found and after:
        # Nothing after the cursor: what is due behind it, if anything, from the front.
        batch, found = _rows_claim(table, pick_where, params, limit, lease_seconds, join_from, join_where,
                                   extra_columns, with_due=True)
    if found:
        # Only the last row picked carries its due_at (the rest, NULL): the cursor needs that
        # one, and loading 500 timestamps was 2% of a send worker's samples. If that row was
        # not claimed after all (its customer is gone), the cursor stays where it was: the
        # next claim walks a little further, nothing is skipped.
        cursor.advance([(row[0], row[-1]) for row in found if row[-1] is not None])
    else:
        cursor.due_at, cursor.id = None, 0
    return batch, [row[:-1] for row in found]


def _rows_claim(
    table: str, pick_where: str, params: dict, limit: int, lease_seconds: float | None,
    join_from: str, join_where: str, extra_columns: str, *, with_due: bool = False,
    after: tuple[datetime, int] | None = None,
) -> tuple[str, list[tuple]]:
    """rows_claim's statement. PostgreSQL only: `with_due` ends each row with a column that
    holds the due_at of the last row picked (for the cursor) in that row and NULL in the
    others, `after` (a due_at and an id) picks only rows past it."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds or settings.CAMPAIGN_LEASE_SECONDS)
    batch = uuid.uuid4().hex
    pg = is_postgres()
    if not pg and (join_from or extra_columns):
        raise ValueError("joined claims need PostgreSQL")
    # A row comparison the index on (campaign, due_at, id) starts its scan at.
    past_cursor = " AND (s.due_at, s.id) > (%(after_due)s, %(after_id)s)" if after else ""
    cursor_column = (
        f", CASE WHEN {table}.id = (SELECT id FROM picked ORDER BY due_at DESC, id DESC LIMIT 1) "
        f"THEN {table}.due_at END" if with_due else ""
    )
    lock = "FOR UPDATE OF s SKIP LOCKED" if pg else ""
    # The picked ids are MATERIALIZED first: as a plain `id IN (subquery)` PostgreSQL may
    # rescan the subquery per row and ignore its LIMIT.
    # PostgreSQL returns the customer (and whether they are suppressed) with the claim;
    # SQLite's RETURNING sees only the updated table, so it reads them right after.
    customer_from = f", {CUSTOMER_TABLE} c" if pg else ""
    # A row whose customer is gone (no database constraint holds it) is never claimed, on
    # either database: it stays pending until campaign_finish_if_done cancels it. Claimed on
    # SQLite, it would sit in `sending` until its lease ran out and then come due again.
    customer_where = (f" AND c.id = {table}.customer_id" if pg else
                      f" AND EXISTS (SELECT 1 FROM {CUSTOMER_TABLE} c WHERE c.id = {table}.customer_id)")
    customer_columns = f", {CUSTOMER_SQL}" if pg else ""
    # The UPDATE finds its rows by primary key alone on PostgreSQL: the picked rows are
    # locked and were re-checked as pending when locked, so nobody else can have moved them.
    # Said again here, `status = 'pending'` let the planner look the ids up in the partial
    # index of pending rows (ledger_pending), believing it tiny: statistics taken before the
    # launch count no pending row, so it read the whole index once per row (857 ms for 500
    # rows of a 100,000-row campaign, 25 ms by primary key). On SQLite, with no row locks,
    # the condition is what keeps two claims apart.
    still_pending = "" if pg else f" AND {table}.status = %(pending)s"
    sql = f"""
        WITH picked AS MATERIALIZED (
            SELECT s.id, s.due_at FROM {table} s
            WHERE s.status = %(pending)s AND s.due_at <= %(now)s AND {pick_where}{past_cursor}
            ORDER BY s.due_at, s.id
            LIMIT %(limit)s
            {lock}
        )
        UPDATE {table} SET status = %(sending)s, attempts = {table}.attempts + 1, lease_until = %(lease)s,
               batch = %(batch)s, updated_at = %(now)s
        FROM picked{customer_from}{join_from}
        WHERE {table}.id = picked.id{still_pending}{customer_where}{join_where}
        RETURNING {table}.id, {table}.customer_id, {table}.variant_id, {table}.email, {table}.key,
                  {table}.attempts, {table}.retries{customer_columns}{extra_columns}{cursor_column}
    """
    params = params | {
        "pending": PENDING, "sending": SENDING, "lease": db_datetime(lease), "batch": batch,
        "now": db_datetime(now), "limit": limit,
    }
    if after:
        params |= {"after_due": after[0], "after_id": after[1]}
    if pg:
        # One statement is its own transaction: no BEGIN and COMMIT round trips around it.
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return batch, cursor.fetchall()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
        if found:
            ids = [row[1] for row in found]
            cursor.execute(
                f"SELECT c.id, {CUSTOMER_SQL} FROM {CUSTOMER_TABLE} c WHERE c.id IN ({', '.join(['%s'] * len(ids))})", ids
            )
            extra = {row[0]: row[1:] for row in cursor.fetchall()}
            found = [row + extra[row[1]] for row in found if row[1] in extra]
    return batch, found


def claimed_split(row: tuple) -> tuple[Claimed, tuple]:
    """A claimed row as `Claimed`, and the rest of its columns (the `extra_columns`)."""
    (id_, customer_id, variant_id, email, key, attempts, retries,
     external_id, customer_email, name, country, zone, signup, attributes, suppressed) = row[:15]
    if isinstance(attributes, str):  # SQLite (and Django's psycopg setup) hand JSON back as text
        # Most customers have none: '{}' without the decoder (json.loads was half of this
        # function's time in a send worker, py-spy).
        attributes = json.loads(attributes) if attributes and attributes != "{}" else {}
    customer = {
        "id": customer_id, "external_id": external_id, "email": customer_email, "name": name,
        "country": country, "time_zone": zone, "signup_date": signup, "attributes": attributes or {},
    }
    return Claimed(id_, customer_id, variant_id, email, key, attempts, retries, customer, bool(suppressed)), row[15:]


def outcomes_record(table: str, outcomes: list[Outcome], *, provider: str) -> int:
    """Write the outcomes of one claim in one statement; rows whose attempt is no longer
    current (or that are no longer `sending`) are left alone. Returns rows written."""
    if not outcomes:
        return 0
    now = timezone.now()
    if is_postgres():
        # The batch as one JSON text: json.dumps runs in C, where nine array parameters were
        # quoted element by element by psycopg's client-side binding (5.5% of a send
        # worker's samples, py-spy at 100,000 sends). A key at its default is left out
        # (json_to_recordset reads it as NULL): a sent row carries its id, attempt, status,
        # message id and code. `was` too, on purpose: see below.
        rows = []
        for o in outcomes:
            row = {"id": o.id, "attempts": o.attempts, "status": o.status, "was": SENDING}
            if o.provider_message_id:
                row["pmid"] = o.provider_message_id[:255]
            if o.error:
                row["error"] = o.error[:2000]
            if o.offer_code:
                row["code"] = o.offer_code[:64]
            if o.due_at is not None:
                row["due"] = o.due_at.isoformat()
            if o.retried:
                row["retried"] = 1
            rows.append(row)
        source = (
            "SELECT id, attempts, status, COALESCE(pmid, ''), COALESCE(error, ''), COALESCE(code, ''), due, "
            "COALESCE(retried, 0), was FROM json_to_recordset(%s::json) AS j (id bigint, attempts integer, "
            "status text, pmid text, error text, code text, due timestamptz, retried integer, was text)"
        )
        params: list = [json.dumps(rows, separators=(",", ":"))]
    else:
        columns = [
            [o.id for o in outcomes], [o.attempts for o in outcomes], [o.status for o in outcomes],
            [o.provider_message_id[:255] for o in outcomes], [o.error[:2000] for o in outcomes],
            [o.offer_code[:64] for o in outcomes], [db_datetime(o.due_at) for o in outcomes],
            [1 if o.retried else 0 for o in outcomes], [SENDING] * len(outcomes),
        ]
        source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(outcomes))
        params = [value for row in zip(*columns) for value in row]
    sql = f"""
        WITH v (id, attempts, status, pmid, error, code, due, retried, was) AS ({source})
        UPDATE {table} SET
            status = v.status,
            provider_message_id = CASE WHEN v.pmid <> '' THEN v.pmid ELSE {table}.provider_message_id END,
            error = v.error,
            offer_code = CASE WHEN v.code <> '' THEN v.code ELSE {table}.offer_code END,
            sent_at = CASE WHEN v.status = %s THEN %s ELSE {table}.sent_at END,
            due_at = COALESCE(v.due, {table}.due_at),
            retries = {table}.retries + v.retried,
            lease_until = NULL,
            provider = %s,
            updated_at = %s
        FROM v
        WHERE {table}.id = v.id AND {table}.attempts = v.attempts AND {table}.status = v.was
    """
    # `v.was` (each row's 'sending'), not the constant: with `status = 'sending'` written
    # out the planner may look the ids up in the partial index of sending rows
    # (ledger_sending_lease), which also holds an entry for every row sent since the last
    # vacuum: 71 ms for 500 rows with 28,000 such entries, growing as the campaign goes on.
    # Compared to a value it cannot see, the rows are found by primary key.
    params += [SENT, db_datetime(now), provider, db_datetime(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not is_postgres():
            cursor.execute("SELECT changes()")  # rowcount is -1 after WITH ... UPDATE there
            return cursor.fetchone()[0]
        return cursor.rowcount


def leases_expire(model: type[Model], now: datetime | None = None) -> int:
    """Rows whose worker died mid-send: we cannot know if the request went out, so they
    become `unknown` and are reconciled with the provider, never resent blindly."""
    now = now or timezone.now()
    return model.objects.filter(status=SENDING, lease_until__lt=now).update(
        status=UNKNOWN, lease_until=None, updated_at=now,
        error="the worker stopped before recording a result (lease expired)",
    )


def unknowns_reconcile(model: type[Model], provider, *, max_batches: int = 50, now: datetime | None = None) -> dict:
    """Settle `unknown` rows by asking the provider what it holds of their batch.

    Found: sent. Not found: nothing went out, so the row is due again. A provider that
    cannot tell leaves the rows unknown until a webhook (or a person) settles them.
    """
    now = now or timezone.now()
    settle_after = now - timedelta(seconds=settings.CAMPAIGN_RECONCILE_AFTER_SECONDS)
    batches = list(
        model.objects.filter(status=UNKNOWN, updated_at__lt=settle_after)
        .exclude(batch="")
        .values_list("batch", flat=True)
        .distinct()[:max_batches]
    )
    summary = {"batches": 0, "sent": 0, "requeued": 0, "undecided": 0}
    for batch in batches:
        rows = list(model.objects.filter(status=UNKNOWN, batch=batch).values("id", "key", "attempts"))
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
            # Ask again later, not on every tick.
            model.objects.filter(id__in=[r["id"] for r in rows], status=UNKNOWN).update(
                updated_at=now, error=error or "awaiting the provider's webhook (it cannot be asked)"
            )
            summary["undecided"] += len(rows)
            continue
        for row in rows:
            qs = model.objects.filter(id=row["id"], status=UNKNOWN, attempts=row["attempts"])
            if row["key"] in found:
                summary["sent"] += qs.update(
                    status=SENT, provider_message_id=found[row["key"]] or "", sent_at=now, updated_at=now, error="",
                )
            else:
                summary["requeued"] += qs.update(
                    status=PENDING, due_at=now, updated_at=now, error="the provider does not have it: sent again",
                )
    return summary
