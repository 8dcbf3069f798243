"""The automations' send ledger: claim due step sends, record results, expire leases,
reconcile. The campaign ledger's discipline (campaigns/ledger.py) on AutomationSend:

- a claim is one UPDATE over rows picked `FOR UPDATE SKIP LOCKED`, bumping `attempts` and
  setting a lease; two workers never hold the same row;
- a result is recorded only while the row is still `sending` with the attempt that claimed
  it, so a worker that lost its lease changes nothing;
- a lease that runs out makes the row `unknown`, and the provider is asked (by the batch id
  every message carries) whether it holds it: found is sent, not found is due again.

PostgreSQL only (automations are).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Consent, Customer, Order, Suppression
from segments.models import Membership, Segment

from ..ledger import Outcome
from ..models import Automation, AutomationEntry, AutomationSend

TABLE = AutomationSend._meta.db_table
ENTRY = AutomationEntry._meta.db_table
AUTOMATION = Automation._meta.db_table
CUSTOMER = Customer._meta.db_table
ORDER = Order._meta.db_table
MEMBERSHIP = Membership._meta.db_table
SEGMENT = Segment._meta.db_table
S = AutomationSend.Status


@dataclass
class ClaimedSend:
    id: int
    automation_id: int
    step_id: int
    step_index: int
    entry_id: int
    customer_id: int
    variant_id: int | None
    email: str
    key: str
    attempts: int
    retries: int
    customer: dict
    suppressed: bool
    ordered: bool  # an order since the entry: for the exit rule and `unless`
    in_segment: bool  # still in the trigger segment (segment triggers): for `left_segment`


def sends_claim(limit: int, *, lease_seconds: float | None = None) -> tuple[str, list[ClaimedSend]]:
    """Claim up to `limit` due sends of active automations: (batch id, rows)."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds or settings.CAMPAIGN_LEASE_SECONDS)
    batch = uuid.uuid4().hex
    sql = f"""
        WITH picked AS MATERIALIZED (
            SELECT s.id FROM {TABLE} s
            WHERE s.status = 'pending' AND s.due_at <= %(now)s
              AND EXISTS (SELECT 1 FROM {AUTOMATION} a WHERE a.id = s.automation_id AND a.state = 'active')
            ORDER BY s.due_at, s.id
            LIMIT %(limit)s
            FOR UPDATE OF s SKIP LOCKED
        )
        UPDATE {TABLE} SET status = 'sending', attempts = {TABLE}.attempts + 1, lease_until = %(lease)s,
               batch = %(batch)s, updated_at = %(now)s
        FROM picked, {CUSTOMER} c, {ENTRY} e, {AUTOMATION} a
        WHERE {TABLE}.id = picked.id AND {TABLE}.status = 'pending' AND c.id = {TABLE}.customer_id
          AND e.id = {TABLE}.entry_id AND a.id = {TABLE}.automation_id
        RETURNING {TABLE}.id, {TABLE}.automation_id, {TABLE}.step_id, {TABLE}.step_index, {TABLE}.entry_id,
                  {TABLE}.customer_id, {TABLE}.variant_id, {TABLE}.email, {TABLE}.key, {TABLE}.attempts,
                  {TABLE}.retries,
                  c.external_id, c.email, c.name, c.country, c.time_zone, c.signup_date, c.attributes,
                  (EXISTS (SELECT 1 FROM {Suppression._meta.db_table} x WHERE x.customer_id = c.id)
                   OR EXISTS (SELECT 1 FROM {Consent._meta.db_table} k WHERE k.customer_id = c.id AND NOT k.granted)),
                  EXISTS (SELECT 1 FROM {ORDER} o WHERE o.customer_id = c.id AND o.ordered_at >= e.entered_at),
                  (a.trigger_segment_id IS NULL OR EXISTS (
                      SELECT 1 FROM {MEMBERSHIP} m WHERE m.segment_id = a.trigger_segment_id AND m.customer_id = c.id
                        AND m.version = (SELECT g.current_version FROM {SEGMENT} g WHERE g.id = a.trigger_segment_id)))
    """
    params = {"now": now, "lease": lease, "batch": batch, "limit": limit}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows = []
    for r in found:
        (id_, automation_id, step_id, step_index, entry_id, customer_id, variant_id, email, key, attempts, retries,
         external_id, customer_email, name, country, zone, signup, attributes, suppressed, ordered, in_segment) = r
        if isinstance(attributes, str):  # Django's psycopg setup hands jsonb back as text
            attributes = json.loads(attributes or "{}")
        customer = {
            "id": customer_id, "external_id": external_id, "email": customer_email, "name": name,
            "country": country, "time_zone": zone, "signup_date": signup, "attributes": attributes or {},
        }
        rows.append(ClaimedSend(id_, automation_id, step_id, step_index, entry_id, customer_id, variant_id, email, key,
                                attempts, retries, customer, bool(suppressed), bool(ordered), bool(in_segment)))
    rows.sort(key=lambda r: r.id)
    return batch, rows


def sends_record(outcomes: list[Outcome], *, provider: str) -> int:
    """Write the outcomes of one claim in one statement; stale attempts are left alone."""
    if not outcomes:
        return 0
    now = timezone.now()
    columns = [
        [o.id for o in outcomes], [o.attempts for o in outcomes], [o.status for o in outcomes],
        [o.provider_message_id[:255] for o in outcomes], [o.error[:2000] for o in outcomes],
        [o.offer_code[:64] for o in outcomes], [o.due_at for o in outcomes],
        [1 if o.retried else 0 for o in outcomes],
    ]
    sql = f"""
        WITH v (id, attempts, status, pmid, error, code, due, retried) AS (
            SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::text[],
                                 %s::timestamptz[], %s::integer[]))
        UPDATE {TABLE} SET
            status = v.status,
            provider_message_id = CASE WHEN v.pmid <> '' THEN v.pmid ELSE {TABLE}.provider_message_id END,
            error = v.error,
            offer_code = CASE WHEN v.code <> '' THEN v.code ELSE {TABLE}.offer_code END,
            sent_at = CASE WHEN v.status = 'sent' THEN %s ELSE {TABLE}.sent_at END,
            due_at = COALESCE(v.due, {TABLE}.due_at),
            retries = {TABLE}.retries + v.retried,
            lease_until = NULL, provider = %s, updated_at = %s
        FROM v
        WHERE {TABLE}.id = v.id AND {TABLE}.attempts = v.attempts AND {TABLE}.status = 'sending'
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*columns, now, provider, now])
        return cursor.rowcount


def sends_expire_leases(now: datetime | None = None) -> int:
    """A worker died mid-send: the row may or may not have gone out, so it is `unknown`."""
    now = now or timezone.now()
    return AutomationSend.objects.filter(status=S.SENDING, lease_until__lt=now).update(
        status=S.UNKNOWN, lease_until=None, updated_at=now,
        error="the worker stopped before recording a result (lease expired)",
    )


def sends_reconcile(provider, *, max_batches: int = 50, now: datetime | None = None) -> dict:
    """Settle `unknown` rows by asking the provider what it holds of their batch."""
    now = now or timezone.now()
    settle_after = now - timedelta(seconds=settings.CAMPAIGN_RECONCILE_AFTER_SECONDS)
    batches = list(
        AutomationSend.objects.filter(status=S.UNKNOWN, updated_at__lt=settle_after).exclude(batch="")
        .values_list("batch", flat=True).distinct()[:max_batches]
    )
    summary = {"batches": 0, "sent": 0, "requeued": 0, "undecided": 0}
    for batch in batches:
        rows = list(AutomationSend.objects.filter(status=S.UNKNOWN, batch=batch).values("id", "key", "attempts"))
        try:
            found = provider.lookup(batch)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # the provider may be down: ask again next time
            found, error = None, f"reconcile lookup failed: {exc}"[:500]
        else:
            error = ""
        summary["batches"] += 1
        if found is None:
            AutomationSend.objects.filter(id__in=[r["id"] for r in rows], status=S.UNKNOWN).update(
                updated_at=now, error=error or "awaiting the provider's webhook (it cannot be asked)"
            )
            summary["undecided"] += len(rows)
            continue
        for row in rows:
            qs = AutomationSend.objects.filter(id=row["id"], status=S.UNKNOWN, attempts=row["attempts"])
            if row["key"] in found:
                summary["sent"] += qs.update(status=S.SENT, provider_message_id=found[row["key"]] or "", sent_at=now,
                                             updated_at=now, error="")
            else:
                summary["requeued"] += qs.update(status=S.PENDING, due_at=now, updated_at=now,
                                                 error="the provider does not have it: sent again")
    return summary
