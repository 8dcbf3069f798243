"""campaigns/views.py: one-click unsubscribe under /u/ (RFC 8058)."""

import pytest

from campaigns.services.launch import campaign_launch
from campaigns.models import LedgerEntry
from campaigns.unsubscribe import unsubscribe_token, unsubscribe_url
from customers.models import Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(campaign):
    campaign_launch(campaign)
    return list(LedgerEntry.objects.filter(campaign=campaign).order_by("id")[:2])


def path(row):
    return f"/u/{unsubscribe_token(row.key)}/"


def test_the_url_is_built_from_site_url_and_is_opaque(rows, settings):
    url = unsubscribe_url(rows[0].key)
    assert url.startswith(settings.SITE_URL + "/u/")
    assert rows[0].email not in url and str(rows[0].customer_id) not in url.split("/u/")[1].split(".")[0][:4]


def test_get_shows_a_confirmation_and_unsubscribes_nobody(client, rows):
    response = client.get(path(rows[0]))
    assert response.status_code == 200 and b"<form method=\"post\"" in response.content
    assert not Suppression.objects.exists()


def test_a_one_click_post_unsubscribes_without_login_or_redirect(rows):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(path(rows[0]), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert Suppression.objects.filter(customer_id=rows[0].customer_id, reason="unsubscribed").count() == 1


def test_a_token_unsubscribes_only_its_own_customer(client, rows):
    client.post(path(rows[0]))
    assert not Suppression.objects.filter(customer_id=rows[1].customer_id).exists()


def test_a_tampered_token_is_refused(client, rows):
    token = unsubscribe_token(rows[0].key)
    forged = rows[1].key + token[len(rows[0].key):]
    assert client.post(f"/u/{forged}/").status_code == 404
    assert client.post("/u/not-a-token/").status_code == 404
    assert not Suppression.objects.exists()


def test_unsubscribing_twice_changes_nothing(client, rows):
    client.post(path(rows[0]))
    client.post(path(rows[0]))
    assert Suppression.objects.count() == 1
