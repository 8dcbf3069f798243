"""campaigns/sending.py + ledger.py: claim, check, send, record; exactly once."""

import uuid
from datetime import datetime, time, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from campaigns import ledger, selectors, sending
from campaigns.services.drafts import campaign_create
from campaigns.ledger import Outcome, ledger_claim, ledger_expire_leases, ledger_reconcile, ledger_record
from campaigns.models import Campaign, LedgerEntry, OutboxMessage
from campaigns.providers.registry import provider_for
from campaigns.ratelimit import RateLimiter
from campaigns.sending import campaign_send, quiet_until
from core.db import is_postgres
from customers.models import Customer, Suppression
from tests.campaigns.conftest import launched, spec

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status



def test_the_outbox_stores_one_message_per_recipient_with_one_click_unsubscribe(campaign):
    campaign = launched(campaign)
    stats = campaign_send(campaign.id)
    assert stats.sent == OutboxMessage.objects.count() == LedgerEntry.objects.filter(campaign=campaign, arm__in=["A", "B"]).count()
    message = OutboxMessage.objects.first()
    assert message.headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/u/")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert Campaign.objects.get(id=campaign.id).state == Campaign.State.COMPLETED


def test_sending_twice_sends_once(campaign):
    campaign = launched(campaign)
    first = campaign_send(campaign.id)
    second = campaign_send(campaign.id)
    assert first.sent > 0 and second.claimed == 0
    assert OutboxMessage.objects.count() == first.sent


def test_postmark_batches_are_recorded_with_the_providers_ids(campaign, postmark):
    campaign = launched(campaign)
    stats = campaign_send(campaign.id)
    rows = LedgerEntry.objects.filter(campaign=campaign, status=S.SENT)
    assert stats.sent == rows.count() == len(postmark.received)
    assert postmark.summary()["send_requests"] == 1  # one /email/batch call for < 500
    by_key = {r.key: r for r in postmark.received}
    row = rows.first()
    assert by_key[row.key].message_id == row.provider_message_id and row.provider == "postmark"
    assert row.offer_code == "SPRING20"


def test_a_refused_address_fails_its_row_with_the_reason(campaign, postmark):
    campaign = launched(campaign)
    target = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).first()
    postmark.faults.update({"reject": {target.email}})
    campaign_send(campaign.id)
    target.refresh_from_db()
    assert target.status == S.FAILED and "Invalid 'To' address" in target.error
    assert selectors.ledger_counts(campaign)[S.SENT] == len(postmark.received)


def test_a_429_defers_the_batch_for_at_least_retry_after(campaign, postmark, settings):
    settings.CAMPAIGN_RETRY_BASE_SECONDS = 0.01
    postmark.faults.update({"every_429": 1, "retry_after": 30})
    campaign = launched(campaign)
    before = timezone.now()
    stats = campaign_send(campaign.id, budget_seconds=0.0001)
    row = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).first()
    assert stats.retried > 0 and row.retries == 1 and "HTTP 429" in row.error
    assert row.due_at >= before + timedelta(seconds=29)
    assert postmark.received == []


def test_retries_stop_at_the_cap_with_the_last_reason(campaign, postmark, settings):
    settings.CAMPAIGN_MAX_RETRIES = 1
    postmark.faults.update({"every_503": 1})
    campaign = launched(campaign)
    campaign_send(campaign.id, budget_seconds=0.0001)
    row = LedgerEntry.objects.filter(campaign=campaign, arm="A").first()
    assert row.status == S.FAILED and "gave up after 1 tries: HTTP 503" in row.error


def test_an_ambiguous_500_is_reconciled_from_the_provider_not_resent(campaign, postmark, settings):
    settings.CAMPAIGN_RECONCILE_AFTER_SECONDS = 0
    postmark.faults.update({"every_500": 1})
    campaign = launched(campaign)
    campaign_send(campaign.id)
    assert selectors.ledger_counts(campaign)[S.UNKNOWN] == len(postmark.received) > 0
    postmark.faults.update({"every_500": 0})
    summary = ledger_reconcile(provider_for(), now=timezone.now() + timedelta(seconds=1))
    assert summary["sent"] == len(postmark.received) and summary["requeued"] == 0
    assert campaign_send(campaign.id).claimed == 0
    assert max(postmark.per_recipient().values()) == 1


def test_an_unknown_row_the_provider_never_got_is_sent_again(campaign, postmark, settings):
    settings.CAMPAIGN_RECONCILE_AFTER_SECONDS = 0
    campaign = launched(campaign)
    batch, claimed = ledger_claim(campaign.id, 3)
    # The worker died mid-call: the lease runs out and nobody knows if it went out.
    LedgerEntry.objects.filter(id__in=[r.id for r in claimed]).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert ledger_expire_leases() == 3
    summary = ledger_reconcile(provider_for())
    assert summary["requeued"] == 3
    campaign_send(campaign.id)
    assert {postmark.per_recipient()[r.email] for r in claimed} == {1}


def test_a_result_from_a_stale_attempt_changes_nothing(campaign):
    campaign = launched(campaign)
    _, claimed = ledger_claim(campaign.id, 1)
    row = claimed[0]
    LedgerEntry.objects.filter(id=row.id).update(status=S.PENDING)
    _, again = ledger_claim(campaign.id, 500)
    assert row.id in [r.id for r in again]
    assert ledger_record([Outcome(row.id, row.attempts, S.SENT, "old")], provider="outbox") == 0
    assert LedgerEntry.objects.get(id=row.id).status == S.SENDING


def test_two_claims_never_share_a_row(campaign):
    campaign = launched(campaign)
    _, first = ledger_claim(campaign.id, 100)
    _, second = ledger_claim(campaign.id, 100)
    assert not {r.id for r in first} & {r.id for r in second}


def test_an_unsubscribe_mid_campaign_is_honoured_when_the_row_is_claimed(campaign):
    campaign = launched(campaign)
    row = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).first()
    Suppression.objects.create(customer_id=row.customer_id, reason="unsubscribed")
    campaign_send(campaign.id)
    row.refresh_from_db()
    assert row.status == S.SUPPRESSED
    assert all(row.email not in m.to for m in OutboxMessage.objects.all())


def test_quiet_hours_defer_a_message_to_their_end_in_the_customers_zone(segment, customers):
    Customer.objects.update(time_zone="Asia/Tokyo")
    now = timezone.now()
    tokyo_hour = (now + timedelta(hours=9)).hour
    start, end = time((tokyo_hour - 1) % 24), time((tokyo_hour + 2) % 24)
    campaign = launched(campaign_create(spec(quiet_hours={"start": start.isoformat(), "end": end.isoformat()})))
    stats = campaign_send(campaign.id)
    assert stats.sent == 0 and stats.deferred > 0
    row = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).first()
    assert row.due_at > now and "quiet hours" in row.error
    assert row.due_at.astimezone(dt_timezone(timedelta(hours=9))).time().replace(second=0, microsecond=0) == end


def test_quiet_hours_over_midnight():
    now = datetime(2030, 1, 1, 23, 30, tzinfo=dt_timezone.utc)
    assert quiet_until(now, "UTC", time(21), time(8)) == datetime(2030, 1, 2, 8, tzinfo=dt_timezone.utc)
    assert quiet_until(now.replace(hour=12), "UTC", time(21), time(8)) is None


def test_the_frequency_cap_defers_rather_than_drops(segment, customers):
    first = launched(campaign_create(spec(name="first", frequency_cap=1)))
    campaign_send(first.id)
    got_first = set(LedgerEntry.objects.filter(campaign=first, status=S.SENT).values_list("customer_id", flat=True))
    second = launched(campaign_create(spec(name="second", frequency_cap=1)))
    stats = campaign_send(second.id)
    waiting = LedgerEntry.objects.filter(campaign=second, status=S.PENDING)
    sent = LedgerEntry.objects.filter(campaign=second, status=S.SENT)
    assert stats.deferred == waiting.count() > 0
    assert set(waiting.values_list("customer_id", flat=True)) <= got_first
    assert not set(sent.values_list("customer_id", flat=True)) & got_first
    row = waiting.first()
    assert row.due_at > timezone.now() + timedelta(days=6) and "frequency cap" in row.error


def test_cancelled_rows_are_not_claimed(campaign):
    campaign = launched(campaign)
    ledger.ledger_cancel_pending(campaign.id)
    assert ledger_claim(campaign.id, 500)[1] == []


# --------------------------------------------------------------------------- throttling
# Each provider signals "slow down" its own way; whatever the way, the next claim waits.


@pytest.fixture
def limiter(monkeypatch):
    """The limiter campaign_send uses, on a key no other test shares."""
    made = []

    def fresh(account_key):
        made.append(RateLimiter(key=f"{account_key}:{uuid.uuid4().hex}", rate=0, burst=1))
        return made[-1]

    monkeypatch.setattr(sending, "limiter_for", fresh)
    return made


THROTTLES = {
    # Postmark answers 200 for the batch, with ErrorCode 429 for one message inside it.
    "postmark": lambda fake, row: fake.faults.update({"throttle": {row.email}}),
    # Mailgun: HTTP 429 for the whole call, here without a Retry-After to lean on.
    "mailgun": lambda fake, row: fake.faults.update({"every_429": 1, "retry_after": 0}),
    # SES: boto3's ClientError with the code Throttling (an HTTP 400).
    "ses": lambda fake, row: fake.faults.update({"every_429": 1}),
}


@pytest.mark.parametrize("provider_name", sorted(THROTTLES))
def test_after_a_throttled_answer_the_next_claim_waits(request, provider_name, campaign, limiter):
    fake = request.getfixturevalue(provider_name)
    campaign = launched(campaign)
    row = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).order_by("due_at", "id").first()
    THROTTLES[provider_name](fake, row)
    stats = campaign_send(campaign.id, batch_size=20, budget_seconds=0.0001)  # one claim
    assert stats.retried >= 1
    assert limiter[0].reserve(1) >= 0.5, "the next claim must wait for the throttle to pass"


def test_an_answer_without_a_throttle_does_not_hold_the_next_claim(postmark, campaign, limiter):
    campaign = launched(campaign)
    postmark.faults.update({"every_503": 1})
    stats = campaign_send(campaign.id, batch_size=20, budget_seconds=0.0001)
    assert stats.retried == 20 and limiter[0].reserve(1) == 0


def test_a_template_over_budget_at_send_fails_its_campaign_and_others_keep_sending(segment, customers, settings):
    import time as clock

    settings.TEMPLATE_RENDER_SECONDS = 0.5
    body = spec(name="runaway", holdout=0)
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    body["variants"] = [{"name": "A", "subject": "Hi", "text": "{% if customer.id > " + str(customers[0].id) + " %}" + loop + "{% endif %}x"}]
    runaway = launched(campaign_create(body))
    fine = launched(campaign_create(spec(name="fine")))
    started = clock.monotonic()
    campaign_send(runaway.id)
    assert clock.monotonic() - started < 5
    runaway.refresh_from_db()
    assert runaway.state == Campaign.State.FAILED
    assert "variant 'A', text: over the render budget: took longer than 0.5 s" in runaway.last_error
    counts = selectors.ledger_counts(runaway)
    assert counts[S.PENDING] == counts[S.SENDING] == 0 and counts[S.FAILED] == 1
    assert counts[S.SENT] <= 1 and counts[S.CANCELLED] >= 198
    assert campaign_send(fine.id).sent > 0
    assert Campaign.objects.get(id=fine.id).state == Campaign.State.COMPLETED


@pytest.mark.skipif(not is_postgres(), reason="the claim's cursor is PostgreSQL's")
def test_a_row_due_again_behind_the_send_loops_cursor_is_still_sent(campaign, monkeypatch):
    campaign = launched(campaign)
    first = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING).order_by("due_at", "id").first()
    real, batches = sending.batch_send, []

    def batch_send(*args, **kwargs):
        real(*args, **kwargs)
        batches.append(1)
        if len(batches) == 2:  # sent, then requeued by a reconcile on a host whose clock is behind
            LedgerEntry.objects.filter(id=first.id).update(status=S.PENDING, due_at=first.due_at - timedelta(minutes=1))

    monkeypatch.setattr(sending, "batch_send", batch_send)
    campaign_send(campaign.id, batch_size=20)
    row = LedgerEntry.objects.get(id=first.id)
    assert (row.status, row.attempts) == (S.SENT, 2)
    assert Campaign.objects.get(id=campaign.id).state == Campaign.State.COMPLETED
