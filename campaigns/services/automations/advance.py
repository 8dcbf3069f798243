"""Advance entries: the next step's send row once the previous one is settled, and the
entry's end once its last step is.

Set-based and idempotent: the unique (automation, step, customer, entry) makes a second
run (the tick after a worker's own call, two ticks at once) write nothing. A step waits
`wait_hours` after the previous one was settled (sent, skipped, failed or suppressed), so
a message held by quiet hours or the frequency cap never lets the next one overtake it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from campaigns.models import AutomationEntry, AutomationSend

from .entries import CUSTOMER, ENTRY, SEND, STEP, send_id_sql, send_key_sql, unit_hash_sql, variant_pick_sql

S = AutomationSend.Status
SETTLED = (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.FAILED, S.SUPPRESSED, S.SKIPPED)


def sends_advance(*, entry_ids: list[int] | None = None, now: datetime) -> int:
    """Write the next step's row for entries whose current step is settled: rows written."""
    only = "AND s.entry_id = ANY(%(entries)s)" if entry_ids is not None else ""
    u = unit_hash_sql("a.salt || ':' || e.key || ':' || nx.index::text")
    sql = f"""
        INSERT INTO {SEND} (id, automation_id, step_id, step_index, entry_id, customer_id, variant_id, email, status,
                            due_at, attempts, retries, batch, key, provider, provider_message_id, offer_code, error,
                            updated_at)
        SELECT q.sid, q.automation_id, q.step_id, q.step_index, q.entry_id, q.customer_id, q.variant_id, q.email,
               'pending', q.due_at, 0, 0, '', {send_key_sql('q.sid')}, '', '', '', '', %(now)s
        FROM (
            SELECT {send_id_sql()} AS sid, s.automation_id, nx.id AS step_id, nx.index AS step_index, s.entry_id,
                   s.customer_id, pick.id AS variant_id, c.email,
                   GREATEST(COALESCE(s.sent_at, s.updated_at), e.entered_at)
                       + make_interval(secs => nx.wait_hours * 3600) AS due_at
            FROM {SEND} s
            JOIN {ENTRY} e ON e.id = s.entry_id AND e.status = 'active'
            JOIN campaigns_automation a ON a.id = s.automation_id AND a.state <> 'archived'
            JOIN {STEP} cur ON cur.id = s.step_id
            JOIN {STEP} nx ON nx.version_id = cur.version_id AND nx.index = cur.index + 1
            JOIN {CUSTOMER} c ON c.id = s.customer_id
            CROSS JOIN {variant_pick_sql('nx.id', u)} pick
            WHERE s.status = ANY(%(settled)s) {only}
              AND NOT EXISTS (SELECT 1 FROM {SEND} n WHERE n.entry_id = s.entry_id AND n.step_id = nx.id)
            OFFSET 0
        ) q
        ON CONFLICT DO NOTHING
    """
    params = {"now": now, "settled": list(SETTLED), "entries": entry_ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def entries_complete(*, now: datetime) -> int:
    """Active entries whose last step is settled are completed."""
    sql = f"""
        UPDATE {ENTRY} e SET status = %(completed)s, finished_at = %(now)s
        FROM {SEND} s, {STEP} cur
        WHERE s.entry_id = e.id AND cur.id = s.step_id AND e.status = 'active' AND s.status = ANY(%(settled)s)
          AND NOT EXISTS (SELECT 1 FROM {STEP} nx WHERE nx.version_id = cur.version_id AND nx.index = cur.index + 1)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"completed": AutomationEntry.Status.COMPLETED, "now": now, "settled": list(SETTLED)})
        return cursor.rowcount
