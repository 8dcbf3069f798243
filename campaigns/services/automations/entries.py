"""Entries: turn triggers into entries and their first step's send rows, in one statement.

Every trigger reader hands over a SELECT of candidate (customer_id, ref) pairs; one
INSERT ... ON CONFLICT DO NOTHING writes the entries (holdout decided by a hash of the
automation's salt and the entry key, so a rerun decides the same) and, in the same
statement, the first step's send rows of the entries that are not held out. The unique
(automation, key) is what makes a refresh read twice, an event posted twice or a day
evaluated twice enter nobody twice.

PostgreSQL only: the readers run set-based SQL over the whole base.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from campaigns.models import (
    Automation, AutomationEntry, AutomationSend, AutomationStep, AutomationVariant, AutomationVersion,
)
from customers.models import Customer
from segments.models import Membership

ENTRY = AutomationEntry._meta.db_table
SEND = AutomationSend._meta.db_table
STEP = AutomationStep._meta.db_table
VARIANT = AutomationVariant._meta.db_table
CUSTOMER = Customer._meta.db_table
MEMBERSHIP = Membership._meta.db_table
S = AutomationSend.Status
E = AutomationEntry.Status


def unit_hash_sql(text_sql: str) -> str:
    """A uniform number in [0, 1) from md5 of the text: md5's first 32 bits over 2^32, so a
    test can recompute every decision in Python. In double precision, where that division is
    exact (as Python's is); numeric division was rounded and cost a few microseconds a row."""
    return f"(('x' || substr(md5({text_sql}), 1, 8))::bit(32)::bigint::float8 / 4294967296.0::float8)"


def send_key_sql(id_sql: str) -> str:
    """A send row's key from its id: 16 hex digits of the id, then 16 random ones.

    The key is unique and what an unsubscribe token signs. Started by the id, the unique index
    grows at its right edge like the primary key's; a wholly random key lands anywhere in an
    index as large as all the sends, a page read and written per row (measured: the key's
    indexes were half of a 45,000-row insert). The random half keeps keys unguessable, as
    the campaign ledger's keys are (services/launch.py)."""
    return f"lpad(to_hex({id_sql}), 16, '0') || left(replace(gen_random_uuid()::text, '-', ''), 16)"


_sequence: dict[str, str] = {}


def send_id_sql() -> str:
    """The sends' next id, taken in the SELECT so that the key can start with it."""
    if connection.alias not in _sequence:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [SEND])
            _sequence[connection.alias] = cursor.fetchone()[0]
    return f"nextval('{_sequence[connection.alias]}'::regclass)"


def variant_bands(step: AutomationStep) -> list[tuple[int, float]]:
    """(variant id, upper edge) of each variant's share of [0, 1), in (position, id) order:
    u falls in the first band whose edge is above it. The same sums, in the same order, as
    variant_pick_sql's window, so both pick the same variant for the same u."""
    variants = list(AutomationVariant.objects.filter(step=step).order_by("position", "id").values_list("id", "weight"))
    total, running = 0.0, []
    for _, weight in variants:
        total += weight
        running.append(total)
    return [(vid, cum / total) for (vid, _), cum in zip(variants, running)]


def variant_case_sql(bands: list[tuple[int, float]], u_sql: str) -> tuple[str, dict]:
    """CASE over one step's bands (variant_bands): the variant of u, with its named parameters.
    For the first step of a trigger's rows: one expression instead of a subquery per row
    (measured: 1.3 s of a 45,000-row insert)."""
    if not bands:
        raise ValueError("a step has at least one variant (automation_create checks it)")
    whens, params = [], {}
    for n, (vid, edge) in enumerate(bands[:-1]):
        whens.append(f"WHEN {u_sql} < %(edge{n})s THEN %(variant{n})s")
        params |= {f"edge{n}": edge, f"variant{n}": vid}
    params["variant_last"] = bands[-1][0]
    if not whens:
        return "%(variant_last)s::bigint", params
    return f"(CASE {' '.join(whens)} ELSE %(variant_last)s END)::bigint", params


def variant_pick_sql(step_sql: str, u_sql: str) -> str:
    """A LATERAL subquery picking the step's variant whose cumulative weight band holds u."""
    return f"""LATERAL (
        SELECT w.id FROM (
            SELECT v.id, SUM(v.weight) OVER (ORDER BY v.position, v.id) / SUM(v.weight) OVER () AS hi
            FROM {VARIANT} v WHERE v.step_id = {step_sql}
        ) w WHERE w.hi > {u_sql} ORDER BY w.hi LIMIT 1
    )"""


def entries_insert(
    automation: Automation, candidates_sql: str, params: list, *, source: str, now: datetime,
) -> tuple[int, int]:
    """Write the entries of candidates `(customer_id, ref)`: (entries written, held out).

    The caller holds the automation's advisory lock (see tick.py), so the re-entry check
    (no entry of that customer within reentry_days) cannot race another reader.
    """
    version: AutomationVersion = automation.current_version
    first = AutomationStep.objects.get(version=version, index=0)
    filters = []
    filter_params: list = []
    if automation.audience_segment_id:
        filters.append(
            f"EXISTS (SELECT 1 FROM {MEMBERSHIP} m WHERE m.segment_id = %s AND m.version = "
            f"(SELECT current_version FROM segments_segment WHERE id = %s) AND m.customer_id = cand.customer_id)"
        )
        filter_params += [automation.audience_segment_id, automation.audience_segment_id]
    if automation.reentry_days is None:
        key_sql = "cand.customer_id::text"
    else:
        key_sql = "cand.customer_id::text || ':' || cand.ref"
        filters.append(
            f"NOT EXISTS (SELECT 1 FROM {ENTRY} pe WHERE pe.automation_id = %s AND pe.customer_id = cand.customer_id "
            f"AND pe.entered_at > %s::timestamptz - make_interval(days => %s))"
        )
        filter_params += [automation.id, now, automation.reentry_days]
    where = ("WHERE " + " AND ".join(filters)) if filters else ""
    held = unit_hash_sql("%(salt)s || ':' || f.key")
    u = unit_hash_sql("%(salt)s || ':' || ins.key || ':0'")
    variant_sql, variant_params = variant_case_sql(variant_bands(first), "p.u")
    # Each hash is computed once a row (the OFFSET 0 fences keep the planner from copying
    # the expression into every place its column is used), the first step's variant by a
    # CASE over its bands, the key from the row's id (send_key_sql).
    sql = f"""
        WITH cand AS (
            SELECT DISTINCT ON (customer_id) customer_id, ref FROM ({candidates_sql}) x ORDER BY customer_id, ref
        ), f AS (
            SELECT cand.customer_id, {key_sql} AS key FROM cand {where}
        ), ins AS (
            INSERT INTO {ENTRY} (automation_id, version_id, customer_id, key, source, held_out, status, exit_reason,
                                 entered_at)
            SELECT %(automation)s, %(version)s, h.customer_id, h.key, %(source)s, h.held_out,
                   CASE WHEN h.held_out THEN 'held_out' ELSE 'active' END, '', %(now)s
            FROM (SELECT f.customer_id, f.key, {held} < %(holdout)s AS held_out FROM f OFFSET 0) h
            ON CONFLICT (automation_id, key) DO NOTHING
            RETURNING id, customer_id, key, held_out
        ), sends AS (
            INSERT INTO {SEND} (id, automation_id, step_id, step_index, entry_id, customer_id, variant_id, email,
                                status, due_at, attempts, retries, batch, key, provider, provider_message_id,
                                offer_code, error, updated_at)
            SELECT p.sid, %(automation)s, %(step)s, 0, p.id, p.customer_id, {variant_sql}, c.email, 'pending',
                   %(now)s + make_interval(secs => %(wait)s), 0, 0, '', {send_key_sql('p.sid')},
                   '', '', '', '', %(now)s
            FROM (SELECT ins.id, ins.customer_id, {send_id_sql()} AS sid, {u} AS u FROM ins WHERE NOT ins.held_out
                  OFFSET 0) p
            JOIN {CUSTOMER} c ON c.id = p.customer_id
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ins WHERE held_out)
    """
    # Positional parameters for the caller's SELECT and the filters, named for the rest:
    # psycopg takes one style per statement, so the named ones are folded in here.
    named = {
        "automation": automation.id, "version": version.id, "source": source, "holdout": automation.holdout,
        "now": now, "step": first.id, "wait": first.wait_hours * 3600.0, "salt": automation.salt,
    }
    named |= variant_params
    sql, all_params = _positional(sql, named, params + filter_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        written, held_out = cursor.fetchone()
    return written, held_out


def _positional(sql: str, named: dict, positional: list) -> tuple[str, list]:
    """Turn %(name)s into %s in order of appearance, beside the existing %s placeholders."""
    out: list = []
    pieces = []
    i = 0
    pos = iter(positional)
    while i < len(sql):
        if sql.startswith("%(", i):
            end = sql.index(")s", i)
            out.append(named[sql[i + 2 : end]])
            pieces.append("%s")
            i = end + 2
        elif sql.startswith("%s", i):
            out.append(next(pos))
            pieces.append("%s")
            i += 2
        elif sql.startswith("%%", i):
            pieces.append("%%")
            i += 2
        else:
            pieces.append(sql[i])
            i += 1
    return "".join(pieces), out
