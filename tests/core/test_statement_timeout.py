"""Statement timeouts (issue 11 item 4): PostgreSQL cancels a web request's statement after
WEB_STATEMENT_TIMEOUT_MS, the user reads "too complex, narrow it" (400, page and API), and the
statement is not left running. Workers get WORKER_STATEMENT_TIMEOUT_MS instead."""

import time
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import override_settings

from core.db import is_postgres
from core.statement_timeout import TOO_COMPLEX, query_canceled, worker_connection_prepare
from segments import selectors, views

postgres_only = pytest.mark.skipif(not is_postgres(), reason="statement_timeout is PostgreSQL's; SQLite has none")

SLOW_SECONDS = 3


def _slow_preview(*args, **kwargs):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [SLOW_SECONDS])
    return {"count": 0}


def _sleeping_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%' "
                       "AND state = 'active' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def slow_preview(monkeypatch):
    # The real preview of 100 OR'ed conditions over 2.2M customers ran 68 s; a sleep stands in.
    monkeypatch.setattr(selectors, "segment_preview", _slow_preview)
    monkeypatch.setattr(views.selectors, "segment_preview", _slow_preview)


@postgres_only
@override_settings(WEB_STATEMENT_TIMEOUT_MS=200)
@pytest.mark.django_db(transaction=True)
def test_a_slow_api_preview_is_cancelled_and_called_too_complex(viewer_api, slow_preview):
    started = time.monotonic()
    response = viewer_api.post("/api/segments/preview/", {"rule": {"field": "country", "op": "eq", "value": "US"}},
                               format="json")
    assert time.monotonic() - started < SLOW_SECONDS
    assert response.status_code == 400
    assert response.json()["detail"] == TOO_COMPLEX
    assert "narrow it" in TOO_COMPLEX
    assert _sleeping_statements() == 0
    with connection.cursor() as cursor:  # the connection's own limit is lifted after the request
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


@postgres_only
@override_settings(WEB_STATEMENT_TIMEOUT_MS=200)
@pytest.mark.django_db(transaction=True)
def test_a_slow_page_preview_says_too_complex_in_the_page(client, viewer, slow_preview):
    client.force_login(viewer)
    form = urlencode({"row": "0", "c0_field": "country", "c0_op": "eq", "c0_value": "US"})
    response = client.post("/segments/builder/preview/", form, content_type="application/x-www-form-urlencoded",
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "narrow it" in response.content.decode()
    assert _sleeping_statements() == 0


@postgres_only
@override_settings(WORKER_STATEMENT_TIMEOUT_MS=30 * 60 * 1000)
@pytest.mark.django_db
def test_a_worker_connection_gets_the_workers_longer_limit():
    worker_connection_prepare(sender=None, connection=connection)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "30min"


def test_query_canceled_reads_the_sqlstate_through_djangos_wrapper():
    class Canceled(Exception):
        sqlstate = "57014"

    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = Canceled()
    assert query_canceled(wrapped)
    assert not query_canceled(RuntimeError("other"))
