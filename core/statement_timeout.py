"""PostgreSQL statement timeouts: short for web requests, long (or none) for workers.

A rule preview over millions of customers can run for a minute; a web worker killed by
gunicorn's timeout does not stop it in PostgreSQL. With statement_timeout the server cancels
the statement itself, so nothing keeps running after the request has ended, and the user is
told to narrow the query instead of seeing a 500.
"""

from __future__ import annotations

import html

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse

from .db import is_postgres

# SQLSTATE of a statement cancelled by statement_timeout (psycopg's QueryCanceled).
QUERY_CANCELED = "57014"

TOO_COMPLEX = ("This query is too complex to finish in time: narrow it (fewer or simpler conditions, "
               "a smaller segment or date range) and try again.")


def statement_timeout_set(milliseconds: int) -> None:
    """This connection's statement_timeout from now on (0: no limit)."""
    if is_postgres():
        _timeout_apply(connection, milliseconds)


def _timeout_apply(conn, milliseconds: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [str(max(int(milliseconds), 0))])


def query_canceled(exc: BaseException) -> bool:
    """A statement PostgreSQL cancelled because it ran past statement_timeout."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == QUERY_CANCELED:
            return True
        exc = exc.__cause__
    return False


def worker_connection_prepare(sender, connection, **kwargs) -> None:
    """connection_created in a worker process: the worker's own (longer) timeout."""
    if connection.vendor == "postgresql":
        _timeout_apply(connection, settings.WORKER_STATEMENT_TIMEOUT_MS)


def too_complex_response(request) -> HttpResponse:
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": TOO_COMPLEX, "code": "query_too_complex"}, status=400)
    text = html.escape(TOO_COMPLEX)
    if request.headers.get("HX-Request"):
        return HttpResponse(f'<p class="error" role="alert">{text}</p>', status=400)
    return HttpResponse(f"<!doctype html><title>Too complex</title><h1>Too complex</h1><p>{text}</p>"
                        '<p><a href="javascript:history.back()">Back</a></p>', status=400)


class StatementTimeoutMiddleware:
    """Every request's statements get WEB_STATEMENT_TIMEOUT_MS; a cancelled one answers 400
    "too complex, narrow it" (page, htmx fragment or API JSON) instead of a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = int(settings.WEB_STATEMENT_TIMEOUT_MS)
        if limit > 0 and is_postgres():
            statement_timeout_set(limit)
            try:
                return self.get_response(request)
            finally:
                self._reset()
        return self.get_response(request)

    def process_exception(self, request, exception):
        if query_canceled(exception):
            return too_complex_response(request)
        return None

    @staticmethod
    def _reset() -> None:
        # The connection outlives the request (CONN_MAX_AGE) and may serve code that is not a
        # request (tests, a shell); in a broken transaction the reset waits for the rollback.
        try:
            statement_timeout_set(0)
        except DatabaseError:
            pass
