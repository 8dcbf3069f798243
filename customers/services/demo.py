"""Loading the synthetic demo base: customers, orders and events with planted ground truth.

Streamed: the base is generated `demo.CHUNK` customers at a time and each chunk is written
before the next is drawn, so memory stays flat whatever the size (a million customers
means about ten million orders and ten million events). On PostgreSQL each chunk goes to
COPY as one block of text built column-wise, and the tables' secondary indexes, unique
constraints and foreign keys are built once after the load when the tables were empty or
small (customers/importers/indexes.py): kept, they cost a lookup per row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timezone as dt_timezone

import numpy as np
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from core.bulk import bulk_copy
from core.db import is_postgres

from ..demo import CHUNK, COUNTRIES, ZONES, DemoData, demo_chunks
from ..importers.indexes import indexes_deferred, load_plan
from ..models import AttributeDefinition, Customer, Event, Order

NAMES = ["Alex", "Sam", "Robin", "Kim", "Jo", "Lee", "Max", "Ari", "Noa", "Pat"]
CUSTOMER_COLUMNS = ["id", "external_id", "email", "name", "country", "time_zone", "signup_date", "attributes",
                    "created_at", "updated_at"]
ORDER_COLUMNS = ["external_id", "customer_id", "amount", "currency", "ordered_at", "properties"]
EVENT_COLUMNS = ["customer_id", "kind", "occurred_at", "properties"]
ORDER_PROPERTIES = ["{}", '{"campaign": "demo-spring"}', '{"discount_code": "SAVE10"}',
                    '{"discount_code": "SAVE10", "campaign": "demo-spring"}']
# Rows turned into text and sent to COPY at a time.
BLOCK = 20_000
# Removing an earlier demo base this many customers at a time keeps the cascade's memory flat.
DELETE_CHUNK = 50_000


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=dt_timezone.utc)


@transaction.atomic
def demo_load(customers: int = 20_000, seed: int = 7, today: datetime | None = None, *,
              chunk: int = CHUNK) -> dict:
    """Replace any earlier demo customers with a fresh synthetic base (see customers/demo.py)."""
    started = time.monotonic()
    today = (today or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    _demo_delete()
    for name, kind in (("planted_cluster", "integer"), ("discount_user", "boolean"), ("demo_campaign_arm", "text")):
        AttributeDefinition.objects.get_or_create(name=name, defaults={"type": kind})
    pg = is_postgres()
    orders = events = 0
    with ExitStack() as deferred:
        for model in (Customer, Order, Event):
            table = model._meta.db_table
            # Orders and events are about ten a customer: sized by customers the choice errs
            # on keeping the indexes of a table that already holds others' rows.
            deferred.enter_context(indexes_deferred(table, load_plan(table, customers)))
        first_id = _ids_reserve(customers)
        now = timezone.now()
        for data in demo_chunks(customers, seed, today, chunk):
            write = _copy_text if pg else _insert_rows
            write(Customer._meta.db_table, CUSTOMER_COLUMNS, _customer_rows(data, first_id, now, pg))
            write(Order._meta.db_table, ORDER_COLUMNS, _order_rows(data, first_id, pg))
            write(Event._meta.db_table, EVENT_COLUMNS, _event_rows(data, first_id, pg))
            orders += data.orders["customer"].size
            events += data.events["customer"].size
    if pg:
        with connection.cursor() as cursor:
            for model in (Customer, Order, Event):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {
        "customers": customers,
        "orders": int(orders),
        "events": int(events),
        "seed": seed,
        "today": today.date().isoformat(),
        "seconds": round(time.monotonic() - started, 2),
    }


def _demo_delete() -> None:
    """Remove the earlier demo customers (and by cascade all that hangs on them), a range of
    ids at a time: one delete() of a million would hold every customer in memory."""
    demo = Customer.objects.filter(external_id__startswith="demo-")
    bounds = demo.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return
    for low in range(bounds["low"], bounds["high"] + 1, DELETE_CHUNK):
        demo.filter(id__gte=low, id__lt=low + DELETE_CHUNK).delete()


def _ids_reserve(count: int) -> int:
    """The first of `count` consecutive customer ids no one else holds or will be given.

    The ids are written with the rows, so orders and events name their customer without
    reading a million ids back. On PostgreSQL the table is locked against other writers
    and its identity sequence moved past the block.
    """
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        if not is_postgres():
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            return cursor.fetchone()[0] + 1
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT GREATEST(nextval(%s), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}))", [sequence])
        first = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
        return first


# -- Rows: COPY text lines on PostgreSQL, tuples of Python values on SQLite ----------------
# The values are prepared column-wise with numpy; only the joining is per row. None of the
# values holds a tab, newline or backslash, so COPY's text format needs no escaping.


def _iso(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as UTC timestamps to the microsecond, for COPY."""
    micros = np.round(seconds * 1e6).astype(np.int64).view("datetime64[us]")
    return np.datetime_as_string(micros, unit="us", timezone="UTC").tolist()


def _customer_rows(data: DemoData, first_id: int, now: datetime, pg: bool) -> Iterator:
    c = data.customers
    numbers = c["ids"].tolist()
    db_ids = (c["ids"] - 1 + first_id).tolist()
    names = [NAMES[(n - 1) % len(NAMES)] for n in numbers]
    country = c["country_index"].tolist()
    signup_days = np.floor(c["signup"] / 86400).astype(np.int64).view("datetime64[D]")
    clusters = c["cluster"].tolist()
    discount = c["discount_user"].tolist()
    arms = c["arm"].tolist()
    attributes = [
        f'{{"planted_cluster": {cluster}, "discount_user": {"true" if d else "false"}'
        + (f', "demo_campaign_arm": "{arm}"}}' if arm else "}")
        for cluster, d, arm in zip(clusters, discount, arms)
    ]
    if pg:
        signup = np.datetime_as_string(signup_days, unit="D").tolist()
        stamp = now.isoformat()
        for db_id, n, name, k, day, attrs in zip(db_ids, numbers, names, country, signup, attributes):
            yield (f"{db_id}\tdemo-{n}\tdemo-{n}@example.com\t{name} {n}\t{COUNTRIES[k]}\t{ZONES[k]}\t{day}\t"
                   f"{attrs}\t{stamp}\t{stamp}\n")
        return
    signup = signup_days.astype(object).tolist()
    for db_id, n, name, k, day, attrs in zip(db_ids, numbers, names, country, signup, attributes):
        yield (db_id, f"demo-{n}", f"demo-{n}@example.com", f"{name} {n}", str(COUNTRIES[k]), str(ZONES[k]), day,
               attrs, now, now)


def _order_rows(data: DemoData, first_id: int, pg: bool) -> Iterator:
    o = data.orders
    for part in _blocks(o["customer"].size):
        db_ids = (data.customers["ids"][o["customer"][part]] - 1 + first_id).tolist()
        kinds = (o["discounted"][part].astype(np.int8) * 2 + o["campaign"][part]).tolist()
        numbers = o["number"][part].tolist()
        amounts = o["amount"][part].tolist()
        if pg:
            for n, db_id, amount, when, kind in zip(numbers, db_ids, amounts, _iso(o["ordered_at"][part]), kinds):
                yield f"demo-o{n}\t{db_id}\t{amount:.2f}\tUSD\t{when}\t{ORDER_PROPERTIES[kind]}\n"
        else:
            for n, db_id, amount, when, kind in zip(numbers, db_ids, amounts, o["ordered_at"][part].tolist(), kinds):
                yield f"demo-o{n}", db_id, f"{amount:.2f}", "USD", _stamp(when), ORDER_PROPERTIES[kind]


def _event_rows(data: DemoData, first_id: int, pg: bool) -> Iterator:
    e = data.events
    for part in _blocks(e["customer"].size):
        db_ids = (data.customers["ids"][e["customer"][part]] - 1 + first_id).tolist()
        kinds = e["kind"][part].tolist()
        if pg:
            for db_id, kind, when in zip(db_ids, kinds, _iso(e["occurred_at"][part])):
                yield f"{db_id}\t{kind}\t{when}\t{{}}\n"
        else:
            for db_id, kind, when in zip(db_ids, kinds, e["occurred_at"][part].tolist()):
                yield db_id, kind, _stamp(when), "{}"


def _blocks(size: int) -> Iterator[slice]:
    """Slices of BLOCK rows: a chunk's half a million orders become Python values a block at
    a time (whole, they were 200 MB of small objects, most of load_demo's peak memory)."""
    for start in range(0, size, BLOCK):
        yield slice(start, start + BLOCK)


def _copy_text(table: str, columns: list[str], lines: Iterator[str]) -> None:
    """COPY lines of text, sent in blocks of a few megabytes."""
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            block: list[str] = []
            for line in lines:
                block.append(line)
                if len(block) >= BLOCK:
                    copy.write("".join(block))
                    block.clear()
            if block:
                copy.write("".join(block))


def _insert_rows(table: str, columns: list[str], rows: Iterator[tuple]) -> None:
    bulk_copy(table, columns, rows)
