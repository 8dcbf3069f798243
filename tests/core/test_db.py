"""core/db.py: alongside runs a read on a connection of its own, or here inside a transaction;
statistics_refresh analyzes a table after a large write, statistics_refresh_queue has a worker do it."""

import threading
import time

import pytest
from django.db import connection, transaction

from core import db
from core.db import alongside, is_postgres, statistics_refresh, statistics_refresh_queue
from customers.models import Customer
from tests.dbstats import planned_rows

postgres_only = pytest.mark.skipif(not is_postgres(), reason="a second connection only on PostgreSQL")


def _backend() -> tuple[int, str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('statement_timeout')")
        pid, timeout = cursor.fetchone()
    return pid, timeout, threading.current_thread().name


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_runs_on_another_connection_with_this_ones_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '4321ms'")
    try:
        here, _, _ = _backend()
        pid, timeout, thread = alongside(_backend)()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
    assert pid != here and thread.startswith("alongside")
    assert timeout == "4321ms"
    # Its connection was closed when it returned (the server process exits a moment later).
    deadline = time.monotonic() + 5
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0 or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        assert cursor.fetchone()[0] == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_its_exception_reaches_the_caller():
    def fails():
        raise ValueError("from the thread")

    result = alongside(fails)
    with pytest.raises(ValueError, match="from the thread"):
        result()


@pytest.mark.django_db
def test_inside_a_transaction_it_runs_here_and_now():
    # Another connection would not see this transaction's rows.
    with transaction.atomic():
        result = alongside(lambda: threading.current_thread().name)
    assert result() == threading.current_thread().name


@postgres_only
@pytest.mark.django_db
def test_a_large_write_is_analyzed_and_a_small_one_left_to_autovacuum(monkeypatch):
    monkeypatch.setattr(db, "STATISTICS_REFRESH_ROWS", 50)
    Customer.objects.bulk_create(Customer(external_id=f"s{i}") for i in range(40))
    assert statistics_refresh([Customer], 40) is False
    assert planned_rows(Customer) != 40
    Customer.objects.bulk_create(Customer(external_id=f"t{i}") for i in range(60))
    assert statistics_refresh([Customer], 60) is True
    assert planned_rows(Customer) == 100


@postgres_only
@pytest.mark.django_db
def test_a_large_write_queues_its_analyze_once_committed_and_a_small_one_nothing(
    monkeypatch, django_capture_on_commit_callbacks, statistics_queued
):
    """statistics_refresh_queue hands the ANALYZE to a worker: what a person waits on returns first."""
    monkeypatch.setattr(db, "STATISTICS_REFRESH_ROWS", 50)
    queued = statistics_queued
    with django_capture_on_commit_callbacks(execute=True):
        assert statistics_refresh_queue([Customer], 49) is False
        assert statistics_refresh_queue([Customer], 50) is True
        assert queued == []  # not before the commit: a rolled-back write queues nothing
    assert queued == [("core.tasks.statistics_refresh", (["customers.Customer"], 50))]


@postgres_only
@pytest.mark.django_db
def test_with_no_broker_to_take_it_the_analyze_runs_here(monkeypatch, django_capture_on_commit_callbacks, caplog):
    """An import from the command line with no broker running keeps its rows and its statistics."""
    from kombu.exceptions import OperationalError

    def refused(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(db, "STATISTICS_REFRESH_ROWS", 50)
    monkeypatch.setattr(db, "enqueue", refused)
    with django_capture_on_commit_callbacks(execute=True):
        Customer.objects.bulk_create(Customer(external_id=f"b{i}") for i in range(60))
        assert statistics_refresh_queue([Customer], 60) is True
    assert planned_rows(Customer) == 60
    assert "no broker for the ANALYZE after 60 rows" in caplog.text
