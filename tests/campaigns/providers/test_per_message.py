"""campaigns/providers/per_message.py: any anymail backend, one call per message."""

import pytest

from campaigns.providers.base import FAILED, RETRY, SENT
from campaigns.providers.per_message import AnymailProvider
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


def test_one_message_at_a_time_goes_through_anymails_own_send(postmark):
    postmark.faults.update({"reject": {"bad@example.com"}})
    provider = AnymailProvider("postmark")
    assert provider.send([message("a@example.com")])[0].outcome == SENT
    refused = provider.send([message("bad@example.com", "k2")])[0]
    assert refused.outcome == FAILED and "Invalid 'To' address" in refused.error


def test_a_429_through_anymail_is_a_throttle(postmark):
    postmark.faults.update({"every_429": 1, "retry_after": 2})
    result = AnymailProvider("postmark").send([message("a@example.com")])[0]
    assert (result.outcome, result.throttled, result.retry_after) == (RETRY, True, 2.0)
