"""Which database we stand on, asked in one place.

Most code is plain ORM; the few hot paths that speak PostgreSQL's own SQL (COPY, ON CONFLICT,
SKIP LOCKED, MATERIALIZED) ask here and keep a portable path for SQLite.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from kombu.exceptions import OperationalError as BrokerUnreachable

from .jobs import enqueue

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def db_datetime(value):
    """A datetime as the raw cursor wants it: itself on PostgreSQL, Django's text on SQLite."""
    return value if is_postgres() else connection.ops.adapt_datetimefield_value(value)


def alongside(fn: Callable[[], T]) -> Callable[[], T]:
    """Start ``fn`` on a database connection of its own, in a thread, and return a function
    that waits for its result (re-raising its exception).

    For independent reads of one job: PostgreSQL runs ``fn``'s statements while this
    connection runs the caller's, so a slow query's single-process stretches (a parallel
    plan's final aggregation runs in its leader alone) overlap the other's instead of adding
    up. The thread's connection gets this connection's statement_timeout and is closed when
    ``fn`` returns. On SQLite, or inside a transaction (another connection would not see its
    uncommitted rows: tests, a service's atomic block), ``fn`` simply runs here and now.
    """
    if not is_postgres() or connection.in_atomic_block:
        result = fn()
        return lambda: result
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        (timeout,) = cursor.fetchone()

    def run() -> T:
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [timeout])
            return fn()
        finally:
            connections.close_all()  # this thread's connections only

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alongside")
    future = executor.submit(run)
    executor.shutdown(wait=False)
    return future.result


# Rows written at once past which the tables are analyzed (statistics_refresh, here or queued).
STATISTICS_REFRESH_ROWS = 10_000


def statistics_refresh(models: list, written: int) -> bool:
    """ANALYZE the tables of ``models`` after one write of ``written`` rows, if that is many.

    PostgreSQL plans from statistics that only ANALYZE updates. Autovacuum gets to a table a
    minute or more after a write, and only once a tenth of it has changed: a report refreshed
    right after a launch or an import of orders was planned as if the new rows were not there
    (70 s instead of 0.2 s for 196,000 exposures and 14,500 new orders, before the index that
    now keeps that plan cheap too). ANALYZE samples a fixed 30,000 pages: under a second while
    the table is in memory, 4 to 11 s for 10.9 M orders that are not (statistics_refresh_queue
    for a write someone waits on)."""
    if not statistics_stale_after(written):
        return False
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return True


def statistics_refresh_queue(models: list, written: int) -> bool:
    """Have a worker run statistics_refresh once this transaction commits, if ``written`` is many.

    For a write a person waits on (a launch, an import): ANALYZE samples 30,000 pages of the
    table, 0.4 s after a launch to 100,000 but 21 of the 28 s an import of 14,500 orders took
    into a table of 10.9 M (docs/scale.md). The next plans are made a moment later, by then
    on the new rows' statistics.

    An import from the command line needs no broker otherwise: if none takes the task, the
    tables are analyzed here, after the commit, rather than the import failing after its rows
    are in or the planner going on without them."""
    if not statistics_stale_after(written):
        return False

    def publish():
        try:
            enqueue("core.tasks.statistics_refresh", [m._meta.label for m in models], written)
        except BrokerUnreachable as exc:
            logger.warning("no broker for the ANALYZE after %d rows (%s): analyzing here", written, exc)
            statistics_refresh(models, written)

    # After the commit (at once outside a transaction); enqueue's own on_commit then publishes
    # at once too, so a broker that refuses is caught here.
    transaction.on_commit(publish)
    return True


def statistics_stale_after(written: int) -> bool:
    """Whether a write of this many rows leaves PostgreSQL planning on stale statistics."""
    return is_postgres() and written >= STATISTICS_REFRESH_ROWS
