"""campaigns/providers/mailgun.py: a batch in one call, recipient variables per message."""

import pytest

from campaigns.providers.base import FAILED, RETRY, SENT
from campaigns.providers.registry import provider_for
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


def test_mailgun_sends_a_batch_in_one_call_with_each_recipients_own_content(mailgun):
    provider = provider_for()
    first, second = message("a@example.com", "k1"), message("b@example.com", "k2")
    second.subject, second.text = "Other", "other text"
    results = provider.send([first, second])
    assert [r.outcome for r in results] == [SENT, SENT]
    assert mailgun.summary()["send_requests"] == 1
    got = {r.to: r for r in mailgun.received}
    assert got["a@example.com"].subject == "Hi" and got["b@example.com"].subject == "Other"
    assert got["b@example.com"].text == "other text" and got["a@example.com"].key == "k1"
    assert got["a@example.com"].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert set(provider.lookup("b1")) == {"k1", "k2"}


def test_mailgun_refusing_one_address_fails_only_that_recipient(mailgun):
    mailgun.faults.update({"reject": {"bad@example.com"}})
    results = provider_for().send([message("a@example.com", "k1"), message("bad@example.com", "k2")])
    assert [r.outcome for r in results] == [SENT, FAILED]


def test_a_mailgun_429_throttles_the_whole_call(mailgun):
    mailgun.faults.update({"every_429": 1, "retry_after": 3})
    results = provider_for().send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert {(r.outcome, r.throttled, r.retry_after) for r in results} == {(RETRY, True, 3.0)}
    assert mailgun.received == []
