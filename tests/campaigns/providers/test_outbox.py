"""campaigns/providers/outbox.py: stored, never sent, found again by batch."""

import pytest

from campaigns.models import OutboxMessage
from campaigns.providers.base import SENT
from campaigns.providers.registry import provider_for
from tests.campaigns.providers.conftest import message

pytestmark = pytest.mark.django_db


def test_the_outbox_stores_each_message_and_finds_its_batch(settings):
    settings.EMAIL_PROVIDER = "outbox"
    provider = provider_for()
    results = provider.send([message("a@example.com", "k1"), message("b@example.com", "k2")])
    assert [(r.outcome, r.throttled) for r in results] == [(SENT, False)] * 2
    assert OutboxMessage.objects.count() == 2
    assert provider.lookup("b1") == {r.key: r.provider_message_id for r in results}
