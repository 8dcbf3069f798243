"""campaigns/providers/postmark.py: one batch call, an answer per message."""

import pytest
from django.test import override_settings

from campaigns.providers.base import FAILED, RETRY, SENT, UNKNOWN
from campaigns.providers.postmark import PostmarkProvider
from campaigns.providers.registry import provider_for
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


@override_settings(ANYMAIL={"POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"})
def test_our_postmark_batch_json_is_what_anymail_builds_for_the_same_message():
    from campaigns.providers.base import anymail_message

    provider = PostmarkProvider()
    mail = anymail_message(message())
    anymail_data = provider.backend.build_message_payload(mail, provider.backend.send_defaults).data
    assert provider.postmark_json(message()) == anymail_data


def test_a_postmark_batch_answers_each_message(postmark):
    postmark.faults.update({"reject": {"bad@example.com"}})
    provider = provider_for()
    results = provider.send([message("a@example.com", "k1"), message("bad@example.com", "k2")])
    assert [r.outcome for r in results] == [SENT, FAILED]
    assert results[0].provider_message_id and "Invalid 'To' address" in results[1].error


def test_a_per_message_429_inside_a_batch_answer_is_a_throttle(postmark):
    postmark.faults.update({"throttle": {"b@example.com"}})
    results = provider_for().send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert [(r.outcome, r.throttled) for r in results] == [(SENT, False), (RETRY, True)]


def test_an_http_429_throttles_every_message_of_the_call(postmark):
    postmark.faults.update({"every_429": 1, "retry_after": 4})
    results = provider_for().send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert {(r.outcome, r.throttled, r.retry_after) for r in results} == {(RETRY, True, 4.0)}


def test_connection_refused_is_retried_not_unknown(settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    settings.CAMPAIGN_SEND_TIMEOUT = 1
    results = PostmarkProvider().send([message(key="k1"), message("b@example.com", "k2")])
    assert {(r.outcome, r.throttled) for r in results} == {(RETRY, False)}


def test_a_500_after_acceptance_is_unknown_and_the_lookup_finds_the_messages(postmark):
    postmark.faults.update({"every_500": 1})
    provider = provider_for()
    results = provider.send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert {r.outcome for r in results} == {UNKNOWN}
    assert set(provider.lookup("b1")) == {"k1", "k2"}


def test_a_hang_past_the_timeout_is_unknown(postmark):
    postmark.faults.update({"every_hang": 1, "hang_seconds": 2})
    results = provider_for().send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert {r.outcome for r in results} == {UNKNOWN}


def test_postmark_batching_turned_off_sends_one_call_per_message(postmark, settings):
    settings.CAMPAIGN_POSTMARK_BATCH = False
    provider = provider_for()
    assert type(provider).__name__ == "AnymailProvider" and provider.name == "postmark"
