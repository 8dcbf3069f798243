"""Which database we stand on, asked in one place.

Most code is plain ORM; the few hot paths that speak PostgreSQL's own SQL (COPY, ON CONFLICT,
SKIP LOCKED, MATERIALIZED) ask here and keep a portable path for SQLite.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections

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
