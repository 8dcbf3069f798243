"""campaigns/providers.py: outcomes per message, whatever the provider said."""

import pytest
from django.test import override_settings

from campaigns.providers import (
    FAILED, RETRY, SENT, UNKNOWN, AnymailProvider, OutgoingMessage, PostmarkProvider, classify_http, provider_for,
    retry_after_seconds,
)

pytestmark = pytest.mark.django_db


def message(to="a@example.com", key="k1"):
    return OutgoingMessage(
        key=key, to=to, from_email="offers@example.com", subject="Hi", text="t", html="<p>h</p>",
        headers={"List-Unsubscribe": "<https://x/u/t/>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        metadata={"offerlab_id": key, "offerlab_batch": "b1"}, tag="campaign-1",
    )


@override_settings(ANYMAIL={"POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"})
def test_our_postmark_batch_json_is_what_anymail_builds_for_the_same_message():
    provider = PostmarkProvider()
    mail = provider._anymail_message(message())
    anymail_data = provider.backend.build_message_payload(mail, provider.backend.send_defaults).data
    assert provider.postmark_json(message()) == anymail_data


@pytest.mark.parametrize(
    "status, outcome",
    [(429, RETRY), (503, RETRY), (500, UNKNOWN), (502, UNKNOWN), (422, FAILED), (400, FAILED), (401, RETRY)],
)
def test_http_answers_are_classified(status, outcome):
    assert classify_http(status, "body", None)[0] == outcome


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(None) is None


def test_a_postmark_batch_answers_each_message(postmark):
    postmark.faults.update({"reject": {"bad@example.com"}})
    provider = provider_for()
    results = provider.send([message("a@example.com", "k1"), message("bad@example.com", "k2")])
    assert [r.outcome for r in results] == [SENT, FAILED]
    assert results[0].provider_message_id and "Invalid 'To' address" in results[1].error


def test_one_message_at_a_time_goes_through_anymails_own_send(postmark):
    postmark.faults.update({"reject": {"bad@example.com"}})
    provider = AnymailProvider("postmark")
    assert provider.send([message("a@example.com")])[0].outcome == SENT
    refused = provider.send([message("bad@example.com", "k2")])[0]
    assert refused.outcome == FAILED and "Invalid 'To' address" in refused.error


def test_connection_refused_is_retried_not_unknown(settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    settings.CAMPAIGN_SEND_TIMEOUT = 1
    results = PostmarkProvider().send([message(key="k1"), message("b@example.com", "k2")])
    assert {r.outcome for r in results} == {RETRY}


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
