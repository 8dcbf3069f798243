"""Which database we stand on, asked in one place.

Most code is plain ORM; the few hot paths that speak PostgreSQL's own SQL (COPY, ON CONFLICT,
SKIP LOCKED, MATERIALIZED) ask here and keep a portable path for SQLite.
"""

from django.db import connection


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def db_datetime(value):
    """A datetime as the raw cursor wants it: itself on PostgreSQL, Django's text on SQLite."""
    return value if is_postgres() else connection.ops.adapt_datetimefield_value(value)
