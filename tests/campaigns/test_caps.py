"""campaigns/caps.py: a frequency-cap slot is taken under a per-customer lock, so a second
sender counting at the same instant waits for the first one's slot and is refused."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns import caps
from campaigns.caps import cap_release, cap_reserve
from campaigns.models import CapSlot
from core.db import is_postgres
from customers.models import Customer
from tests.campaigns.automations import make_people

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = postgres_only



@pytest.mark.django_db(transaction=True)
def test_a_second_sender_at_the_same_instant_waits_for_the_first_and_is_refused():
    customer = make_people(1, prefix="cc")[0]
    now = timezone.now()
    first_holds = threading.Event()
    result: dict = {}

    def second():
        first_holds.wait(10)
        started = time.monotonic()
        result["refused"] = cap_reserve([(customer, "key-b")], 1, now)
        result["waited"] = time.monotonic() - started
        connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    # The first sender has counted and written its slot, and has not committed yet
    with transaction.atomic():
        assert cap_reserve([(customer, "key-a")], 1, now) == {}
        first_holds.set()
        time.sleep(1.0)
    thread.join(20)
    assert result["waited"] >= 0.9, "the second count waits for the first slot's commit"
    assert customer in result["refused"], "and then sees it: refused"
    assert list(CapSlot.objects.values_list("key", flat=True)) == ["key-a"]


@pytest.mark.django_db
def test_a_retry_keeps_its_slot_and_a_failed_send_frees_it():
    a, b = make_people(2, prefix="cr")
    now = timezone.now()
    assert cap_reserve([(a, "k1"), (b, "k2")], 1, now) == {}
    assert cap_reserve([(a, "k1")], 1, now) == {}, "the same key again is not a second message"
    assert a in cap_reserve([(a, "k3")], 1, now)
    assert cap_reserve([(a, "k4")], None, now) == {}, "uncapped senders are not held, but counted"
    assert cap_release(["k1", "k4"]) == 2
    assert cap_reserve([(a, "k5")], 1, now) == {}


@pytest.mark.django_db
def test_deleting_a_customer_deletes_their_slots():
    # Slots have no database constraint on their customer (a row lock per send): the ORM's
    # cascade is what removes them.
    gone, kept = make_people(2, prefix="cd")
    now = timezone.now()
    cap_reserve([(gone, "key-gone"), (kept, "key-kept")], None, now)
    Customer.objects.filter(id=gone).delete()
    assert list(CapSlot.objects.values_list("key", flat=True)) == ["key-kept"]


@pytest.mark.django_db
def test_a_slot_is_written_to_three_indexes_its_id_its_key_and_its_customers_window():
    # Every marketing email writes a slot: an index nothing reads (unique=True's LIKE index
    # on key) is one more entry per send.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [CapSlot._meta.db_table])
        indexes = sorted(row[0].split(" USING ")[1] for row in cursor.fetchall())
    assert indexes == ["btree (customer_id, at)", "btree (id)", "btree (key)"]


@pytest.mark.django_db
def test_pruning_deletes_the_slots_past_the_window_in_chunks_and_keeps_the_rest(monkeypatch):
    monkeypatch.setattr(caps, "PRUNE_CHUNK", 3)
    a, b = make_people(2, prefix="cp")
    now = timezone.now()
    # Written in time order, as senders write them: seven aged out, then four in the window.
    aged = [now - caps.CAP_WINDOW - timedelta(days=2, minutes=-i) for i in range(7)]
    young = [now - caps.CAP_WINDOW + timedelta(minutes=1), now - timedelta(days=1), now, now]
    for i, at in enumerate(aged + young):
        CapSlot.objects.create(customer_id=a if i % 2 else b, key=f"p{i}", at=at)

    assert caps.cap_slots_prune(now) == 7
    assert sorted(CapSlot.objects.values_list("key", flat=True)) == ["p10", "p7", "p8", "p9"]
    assert caps.cap_slots_prune(now) == 0, "nothing more to prune"
    # What is left still counts: a cap of 2 a week is full for both customers.
    assert set(cap_reserve([(a, "new-a"), (b, "new-b")], 2, now)) == {a, b}


@pytest.mark.django_db
def test_one_run_prunes_at_most_its_chunks_and_the_next_run_goes_on(monkeypatch):
    monkeypatch.setattr(caps, "PRUNE_CHUNK", 2)
    (a,) = make_people(1, prefix="cq")
    now = timezone.now()
    for i in range(5):
        CapSlot.objects.create(customer_id=a, key=f"q{i}", at=now - caps.CAP_WINDOW - timedelta(hours=1))
    assert caps.cap_slots_prune(now, max_chunks=2) == 4
    assert caps.cap_slots_prune(now, max_chunks=2) == 1
    assert not CapSlot.objects.exists()
