"""Frequency caps that hold across campaigns and automations, under concurrency.

A check that reads past sends and then sends lets two workers (two campaigns, or a campaign
and an automation) both pass the cap at the same instant. Here each send takes a slot
first: under a transaction-scoped advisory lock per customer (taken in customer-id order,
so two batches never deadlock), the slots of the last 7 days are counted and a new one is
written only if the cap allows. The lock is held until the slots commit, so the next worker
counts them. A slot is written for every marketing email, capped or not, since an uncapped
campaign's sends count against another one's cap.

A slot whose message did not go out (retry, failure, suppression) is released; an `unknown`
one is kept: it may have gone out. A slot older than the window counts for nothing and is
pruned (cap_slots_prune, hourly): without that the table grew by one row per email for ever.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import connection, transaction

from core.db import is_postgres

from .models import CapSlot

CAP_WINDOW = timedelta(days=7)
PRUNE_CHUNK = 10_000  # slots deleted per statement, each its own transaction
LOCK_NAMESPACE = 71302  # pg_advisory_xact_lock(namespace, customer id)
TABLE = CapSlot._meta.db_table


def cap_reserve(rows: list[tuple[int, str]], cap: int | None, now: datetime) -> dict[int, datetime]:
    """Take a slot for each (customer id, key) the cap allows; returns customer id -> when a
    slot frees up, for those refused. A key that already holds its slot (a retry) keeps it."""
    if not rows:
        return {}
    customers = sorted({customer for customer, _ in rows})
    pg = is_postgres()
    refused: dict[int, datetime] = {}
    if not cap and pg:
        # Nothing to count: the locks and the slots in one statement (the CTE's aggregate has
        # taken every lock before the first slot is written), which is its own transaction
        # (no BEGIN and COMMIT round trips), with the batch as two text parameters: the
        # customers joined by commas, the (customer, key) pairs as JSON. As 1,500 parameters,
        # psycopg's quoting and a second round trip were a third of a send worker's time in
        # caps; as three arrays, quoted element by element, still most of what was left
        # (py-spy, 100,000 sends).
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH locked AS MATERIALIZED "
                f"(SELECT count(pg_advisory_xact_lock(%s, c)) AS n FROM unnest(string_to_array(%s, ',')::int[]) AS c) "
                f"INSERT INTO {TABLE} (customer_id, key, at) SELECT r.c, r.k, %s "
                f"FROM locked, json_to_recordset(%s::json) AS r (c bigint, k text) WHERE locked.n >= 0 "
                f"ON CONFLICT (key) DO NOTHING",
                [LOCK_NAMESPACE, ",".join(map(str, customers)), now,
                 json.dumps([{"c": c, "k": k} for c, k in rows], separators=(",", ":"))],
            )
        return refused
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(%s, c)) FROM unnest(%s::int[]) AS c",
                [LOCK_NAMESPACE, customers],
            )
        keys = [key for _, key in rows]
        held: dict[int, list[datetime]] = {}
        if cap:
            placeholders = ", ".join(["%s"] * len(customers))
            key_marks = ", ".join(["%s"] * len(keys))
            cursor.execute(
                f"SELECT customer_id, at FROM {TABLE} WHERE customer_id IN ({placeholders}) AND at > %s "
                f"AND key NOT IN ({key_marks})",
                [*customers, now - CAP_WINDOW, *keys],
            )
            for customer, at in cursor.fetchall():
                held.setdefault(customer, []).append(at)
        granted: list[tuple[int, str]] = []
        for customer, key in rows:
            times = held.setdefault(customer, [])
            if cap and len(times) >= cap:
                times.sort()
                # The send that must age out of the window before one more fits.
                refused[customer] = times[len(times) - cap] + CAP_WINDOW + timedelta(seconds=1)
                continue
            times.append(now)
            granted.append((customer, key))
        if granted:
            values = ", ".join(["(%s, %s, %s)"] * len(granted))
            cursor.execute(
                f"INSERT INTO {TABLE} (customer_id, key, at) VALUES {values} ON CONFLICT (key) DO NOTHING",
                [v for customer, key in granted for v in (customer, key, now)],
            )
    return refused


def cap_release(keys: list[str]) -> int:
    """The messages of these keys did not go out: their slots are free again."""
    if not keys:
        return 0
    return CapSlot.objects.filter(key__in=keys).delete()[0]


def cap_release_unsent(claimed: list, outcomes: list) -> int:
    """Free the slots of a batch's rows that did not go out: everything but sent and
    `unknown` (which may have gone out, so it keeps its slot)."""
    keys = {r.id: r.key for r in claimed}
    return cap_release([keys[o.id] for o in outcomes if o.status not in ("sent", "unknown")])


def cap_slots_prune(now: datetime, *, max_chunks: int = 100) -> int:
    """Delete the slots that have aged out of the window, oldest first, in chunks of
    PRUNE_CHUNK (each committed alone, so no lock is held for long); returns how many.

    Slots are written in time order, so the oldest are the lowest ids: the chunks walk the
    ids upwards from the first, and the pruning stops at the first chunk that holds a slot
    still in the window. That needs no index on `at` (one more entry in every send's
    insert); a slot out of order behind it (another host's clock) waits for a later run,
    and counts for nothing meanwhile (cap_reserve counts only the window).
    """
    cutoff = now - CAP_WINDOW
    deleted, after = 0, 0
    for _ in range(max_chunks):
        with transaction.atomic(), connection.cursor() as cursor:
            # The chunk's bounds first, then a range delete: the next chunk starts after this
            # one's last id, not at the table's front, where the index still holds the
            # entries of the rows just deleted until a vacuum.
            cursor.execute(
                f"SELECT max(id), count(*) FROM (SELECT id FROM {TABLE} WHERE id > %s ORDER BY id LIMIT %s) chunk",
                [after, PRUNE_CHUNK],
            )
            last, size = cursor.fetchone()
            if not size:
                break
            cursor.execute(f"DELETE FROM {TABLE} WHERE id > %s AND id <= %s AND at < %s", [after, last, cutoff])
            gone = cursor.rowcount
        deleted += gone
        after = last
        if gone < size:
            break
    return deleted
