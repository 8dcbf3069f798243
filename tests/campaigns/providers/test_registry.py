"""campaigns/providers/registry.py: which class sends for a name; a new batch provider fits
the sender with nothing else changed (the README's walkthrough, in miniature)."""

import json

import pytest
import requests

from campaigns.providers import registry
from campaigns.providers.base import RETRY, SENT, Provider, SendResult, TransportError
from campaigns.providers.errors import error_from_http
from campaigns.providers.per_message import AnymailProvider
from campaigns.providers.postmark import PostmarkProvider
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


def test_a_listed_provider_gets_its_module_and_any_other_name_one_call_per_message(settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "RESEND_API_KEY": "k"}
    assert isinstance(registry.provider_for("postmark"), PostmarkProvider)
    other = registry.provider_for("resend")
    assert type(other) is AnymailProvider and other.name == "resend"


class AcmeProvider(Provider):
    """A made-up batch API: POST /acme/batch [{to, subject}] -> [{id} or {error, code}]."""

    name = "acme"
    max_batch = 100
    url = ""  # the API's base URL (a setting, in a real module)

    def send(self, messages):
        try:
            response = requests.post(self.url + "/acme/batch", timeout=self.timeout,
                                     data=json.dumps([{"to": m.to, "subject": m.subject} for m in messages]))
        except requests.RequestException as exc:
            return self.all_failed(messages, self.error_from(exc))
        if response.status_code != 200:
            return self.all_failed(messages, error_from_http(response.status_code, response.text, None))
        results = []
        for m, answer in zip(messages, response.json()):
            if "id" in answer:
                results.append(SendResult.sent(m.key, answer["id"]))
            else:
                slow = answer["code"] == "slow_down"
                results.append(SendResult.failed(m.key, TransportError(answer["error"], throttled=slow, permanent=not slow)))
        return results


def _acme_batch(handler, match, query, body):
    answers = [{"id": f"acme-{i}"} if item["to"] != "busy@example.com" else {"error": "busy", "code": "slow_down"}
               for i, item in enumerate(json.loads(body))]
    handler._count("ok")
    handler._reply(200, answers)


def test_a_new_batch_provider_answers_per_message_with_its_own_throttle(fake, monkeypatch):
    fake.route("POST", r"/acme/batch", _acme_batch)
    monkeypatch.setattr(AcmeProvider, "url", fake.url)
    monkeypatch.setitem(registry.PROVIDERS, "acme", AcmeProvider)
    results = registry.provider_for("acme").send([message("a@example.com", "k1"), message("busy@example.com", "k2")])
    assert [(r.outcome, r.throttled) for r in results] == [(SENT, False), (RETRY, True)]
