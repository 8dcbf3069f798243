"""campaigns/providers/errors.py: HTTP answers and exceptions as typed TransportErrors."""

import pytest

from campaigns.providers.base import FAILED, RETRY, UNKNOWN
from campaigns.providers.errors import error_from_http, retry_after_seconds


@pytest.mark.parametrize(
    "status, outcome",
    [(429, RETRY), (503, RETRY), (500, UNKNOWN), (502, UNKNOWN), (422, FAILED), (400, FAILED), (401, RETRY)],
)
def test_http_answers_are_classified(status, outcome):
    assert error_from_http(status, "body", None).outcome == outcome


def test_only_a_429_is_a_throttle():
    assert error_from_http(429, "slow down", "3").throttled
    assert error_from_http(429, "slow down", "3").retry_after == 3.0
    assert not any(error_from_http(status, "x", None).throttled for status in (400, 401, 500, 503))


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(None) is None
