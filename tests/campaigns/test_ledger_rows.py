"""campaigns/ledger_rows.py: the claim's cursor (the rest of the discipline is tested through
both ledgers, in test_sending.py and automations/)."""

from datetime import timedelta

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.ledger import ledger_claim
from campaigns.ledger_rows import ClaimCursor
from campaigns.models import LedgerEntry
from campaigns.services.drafts import campaign_create
from core.db import is_postgres
from customers.models import Customer
from tests.campaigns.conftest import launched, make_customers, make_segment, spec

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not is_postgres(), reason="the cursor is PostgreSQL's")]
S = LedgerEntry.Status


def _claim_all(campaign_id: int, cursor: ClaimCursor, size: int) -> list[int]:
    taken = []
    while rows := ledger_claim(campaign_id, size, cursor=cursor)[1]:
        taken += [r.id for r in rows]
    return taken


def test_the_cursor_claims_each_due_row_once_in_due_order(campaign):
    campaign = launched(campaign)
    due = list(LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).order_by("due_at", "id")
               .values_list("id", flat=True))
    cursor = ClaimCursor()
    assert _claim_all(campaign.id, cursor, 7) == due
    assert cursor.due_at is None  # nothing left: the next loop starts from the front


def test_a_row_due_again_behind_the_cursor_is_still_claimed(campaign):
    campaign = launched(campaign)
    cursor = ClaimCursor()
    first = ledger_claim(campaign.id, 10, cursor=cursor)[1]
    # Pending again behind the cursor: requeued with a due_at from a host whose clock is behind.
    behind = LedgerEntry.objects.get(id=first[0].id)
    LedgerEntry.objects.filter(id=behind.id).update(status=S.PENDING, due_at=behind.due_at - timedelta(minutes=1))
    assert (cursor.due_at, cursor.id) > (behind.due_at, behind.id)
    taken = _claim_all(campaign.id, cursor, 25)
    assert taken.count(behind.id) == 1 and taken[-1] == behind.id  # after the cursor ran out, from the front
    assert not LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).exists()


def test_a_claim_whose_last_picked_row_has_no_customer_moves_on_and_takes_every_other_row(campaign):
    # The cursor learns where a claim ended from its last picked row; a row whose customer is
    # gone is picked but never claimed (the claim joins the customer).
    campaign = launched(campaign)
    due = list(LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).order_by("due_at", "id")
               .values_list("id", flat=True))
    orphan = due[6]  # the last row of the first claim of 7
    missing = Customer.objects.order_by("-id").values_list("id", flat=True).first() + 1000
    LedgerEntry.objects.filter(id=orphan).update(customer_id=missing)
    cursor = ClaimCursor()
    first = [r.id for r in ledger_claim(campaign.id, 7, cursor=cursor)[1]]
    assert first == due[:6]
    assert _claim_all(campaign.id, cursor, 7) == [i for i in due[6:] if i != orphan]
    assert LedgerEntry.objects.get(id=orphan).status == S.PENDING


def _pick_blocks(sql: str) -> int:
    """Shared buffers the claim's pick (its `picked` CTE) touched, running `sql` and rolling it back."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = plan if isinstance(plan, list) else json.loads(plan)
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Subplan Name") == "CTE picked":
            return node["Shared Hit Blocks"] + node["Shared Read Blocks"]
        nodes += node.get("Plans", [])
    raise AssertionError("no CTE picked in the plan")


def test_a_late_claim_does_not_walk_the_entries_of_rows_already_claimed(db):
    # Claimed rows keep their entries in the partial index of pending rows until a vacuum
    # (here, until the test's transaction ends: their old versions are this transaction's own).
    make_segment("everyone", make_customers(6000))
    campaign = launched(campaign_create(spec()))
    cursor = ClaimCursor()
    while LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).count() > 100:
        ledger_claim(campaign.id, 50, cursor=cursor)
    claims = {}
    for name, claim_cursor in (("cursor", cursor), ("front", None)):
        with CaptureQueriesContext(connection) as queries:
            with transaction.atomic():
                assert len(ledger_claim(campaign.id, 10, cursor=claim_cursor)[1]) == 10
                transaction.set_rollback(True)
        claims[name] = _pick_blocks(next(q["sql"] for q in queries if "WITH picked" in q["sql"]))
    # From the front, the pick walks the entries of the 5,300 rows claimed (and visits their
    # rows' pages to see that they are gone): 166 buffers here; after the cursor, 15.
    assert claims["front"] > 120, claims
    assert claims["cursor"] < 40, claims
