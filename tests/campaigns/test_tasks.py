"""Real worker processes send a campaign through the fake Postmark with faults on; one is
killed with SIGKILL mid-send. The fake provider's record is the judge: every recipient
outside the holdout got exactly one message, the holdout none."""

import os
import signal
import uuid
from pathlib import Path

import pytest

from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from campaigns.models import Campaign, LedgerEntry
from campaigns.tasks import campaign_pump_task
from tests.campaigns.conftest import make_customers, make_segment, spec
from tests.campaigns.fakeprovider import FakeProviderServer
from tests.conftest import wait_for, worker_start

S = LedgerEntry.Status


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _kill_hard(proc) -> None:
    """SIGKILL the worker and its pool processes: nobody gets to clean up."""
    for pid in [proc.pid, *_children(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except Exception:
            _kill_hard(proc)


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_a_killed_worker_loses_nothing_and_sends_nothing_twice(transactional_db, tmp_path):
    # Given 3,000 customers, three of whom the provider refuses for good
    customers = make_customers(3000, prefix="e")
    make_segment("everyone", customers)
    rejected = {"e7@example.com", "e1500@example.com", "e2999@example.com"}
    token = uuid.uuid4().hex  # a fresh account: a fresh rate-limit bucket
    with FakeProviderServer(token=token, keep_bodies=False) as fake:
        fake.faults.update({
            "every_429": 7, "retry_after": 0.3, "every_503": 11, "every_500": 13,
            "every_hang": 17, "hang_seconds": 2.5, "reject": rejected,
        })
        env = dict(
            EMAIL_PROVIDER="postmark", POSTMARK_SERVER_TOKEN=token, POSTMARK_API_URL=fake.url + "/",
            CAMPAIGN_SEND_TIMEOUT="1", CAMPAIGN_LEASE_SECONDS="4", CAMPAIGN_RECONCILE_AFTER_SECONDS="1",
            CAMPAIGN_STALE_SECONDS="2", CAMPAIGN_RETRY_BASE_SECONDS="0.2", CAMPAIGN_RETRY_MAX_SECONDS="1",
            CAMPAIGN_MAX_RETRIES="50", CAMPAIGN_BATCH_SIZE="100", CAMPAIGN_RATE_LIMIT="1000",
            CAMPAIGN_TASK_SECONDS="5",
        )
        # When the campaign launches and a worker starts sending
        campaign = campaign_create(spec(name="e2e"))
        campaign_launch(campaign)  # queues the send tasks once committed
        first = worker_start(tmp_path / "worker1.log", concurrency=2, **env)
        try:
            wait_for(lambda: len(fake.received) >= 800, timeout=40, what="the first worker to send 800 messages")
            # ... and is killed with SIGKILL in the middle
            _kill_hard(first)
        finally:
            _stop(first)
        killed_at = len(fake.received)
        second = worker_start(tmp_path / "worker2.log", concurrency=2, **env)
        try:
            def settled():
                campaign_pump_task.delay()  # what celery beat does every few seconds
                state = Campaign.objects.get(id=campaign.id).state
                return state == Campaign.State.COMPLETED

            wait_for(settled, timeout=60, interval=1.0, what="the campaign to complete after the kill")
        finally:
            _stop(second)
        received = fake.per_recipient()
        outcomes = fake.summary()["outcomes"]

    # Then the provider's record shows exactly one message per audience member outside the holdout
    rows = list(LedgerEntry.objects.filter(campaign_id=campaign.id).values("email", "status", "arm", "error"))
    held = {r["email"] for r in rows if r["arm"] == "holdout"}
    to_send = {r["email"] for r in rows if r["arm"] != "holdout"} - rejected
    assert len(rows) == 3000 and 200 < len(held) < 400
    assert killed_at < len(to_send), "the kill must happen mid-send"
    assert all(outcomes.get(f) for f in ("429", "503", "500", "hang", "search")), outcomes
    assert {a: n for a, n in received.items() if n > 1} == {}, "nobody gets two"
    assert set(received) == to_send, "nobody is missing, the holdout gets none"
    assert not held & set(received)
    statuses = {r["email"]: r for r in rows}
    assert all(statuses[a]["status"] == S.SENT for a in to_send)
    for address in rejected:
        if statuses[address]["arm"] != "holdout":
            assert statuses[address]["status"] == S.FAILED and "Invalid 'To' address" in statuses[address]["error"]


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_a_runaway_template_fails_its_campaign_while_another_completes_on_the_same_worker(transactional_db, tmp_path):
    # Given a campaign whose template loops for ever past the first customer (the one
    # tried at save), and a plain one, both sending through one worker process
    customers = make_customers(60, prefix="r")
    make_segment("everyone", customers)
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    body = spec(name="runaway", holdout=0)
    body["variants"] = [{"name": "A", "subject": "Hi", "text": "{% if customer.id > " + str(customers[0].id) + " %}" + loop + "{% endif %}x"}]
    runaway = campaign_create(body)
    fine = campaign_create(spec(name="fine"))
    campaign_launch(runaway)
    campaign_launch(fine)
    worker = worker_start(tmp_path / "worker.log", concurrency=1, TEMPLATE_RENDER_SECONDS="1", CAMPAIGN_SEND_PARALLELISM="1")
    try:
        def settled():
            states = dict(Campaign.objects.filter(id__in=[runaway.id, fine.id]).values_list("id", "state"))
            return states[runaway.id] == Campaign.State.FAILED and states[fine.id] == Campaign.State.COMPLETED

        # Then within a few budgets the runaway one has failed with the reason and the other completed
        wait_for(settled, timeout=60, interval=0.5, what="the runaway campaign to fail and the other to complete")
    finally:
        _stop(worker)
    runaway.refresh_from_db()
    assert "variant 'A', text: over the render budget: took longer than 1 s" in runaway.last_error
    assert not LedgerEntry.objects.filter(campaign_id=runaway.id, status__in=[S.PENDING, S.SENDING]).exists()
    assert LedgerEntry.objects.filter(campaign_id=fine.id, status=S.SENT).count() > 40
