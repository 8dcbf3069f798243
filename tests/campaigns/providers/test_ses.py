"""campaigns/providers/ses.py: boto3's errors read by their code, throttling included."""

import pytest

from campaigns.providers.base import FAILED, RETRY, SENT
from campaigns.providers.registry import provider_for
from campaigns.providers.ses import SesProvider
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


def test_ses_sends_one_call_per_message(ses):
    provider = provider_for()
    assert isinstance(provider, SesProvider)
    results = provider.send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert [r.outcome for r in results] == [SENT, SENT] and all(r.provider_message_id for r in results)
    assert {r.key for r in ses.received} == {"k1", "k2"}


def test_an_ses_throttling_error_is_a_throttle_not_a_failure(ses):
    ses.faults.update({"every_429": 1})
    result = provider_for().send([message("a@example.com")])[0]
    assert (result.outcome, result.throttled) == (RETRY, True)
    assert "Throttling" in result.error and ses.summary()["send_requests"] == 1  # boto3 did not retry on its own


def test_an_ses_rejection_fails_the_message(ses):
    ses.faults.update({"reject": {"bad@example.com"}})
    result = provider_for().send([message("bad@example.com")])[0]
    assert (result.outcome, result.throttled) == (FAILED, False)
