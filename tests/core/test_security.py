"""Logins and tokens resist guessing, tokens expire, every page carries a policy."""

from datetime import timedelta

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.roles import ADMIN, VIEWER
from tests.factories import UserFactory

PASSWORD = "pw-for-tests-only"


@pytest.fixture(autouse=True)
def clean_throttles():
    from django.core.cache import cache

    cache.clear()  # throttle counters live in the cache, shared between tests


def login(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


@pytest.mark.django_db
def test_wrong_passwords_lock_the_login_even_for_the_right_one(settings):
    user = UserFactory(role=VIEWER)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, user.username, "wrong-password").status_code == 200  # the form again
    assert login(client, user.username, "wrong-password").status_code == 429
    locked = login(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_right_password_before_the_limit_still_logs_in():
    user = UserFactory(role=VIEWER)
    client = Client()
    login(client, user.username, "wrong-password")
    assert login(client, user.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_token_endpoint_is_throttled_against_guessing(settings):
    user = UserFactory(role=VIEWER)
    client = APIClient()
    answers = [client.post("/api/token/", {"username": user.username, "password": f"guess-{i}"}).status_code
               for i in range(12)]
    assert answers[0] == 400
    assert 429 in answers


@pytest.mark.django_db
def test_an_expired_token_is_refused_and_a_new_one_replaces_it(settings):
    user = UserFactory(role=VIEWER)
    client = APIClient()
    old = client.post("/api/token/", {"username": user.username, "password": PASSWORD}).json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(hours=settings.API_TOKEN_TTL_HOURS + 1))
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    refused = client.get("/api/customers/")
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    client.credentials()
    new = client.post("/api/token/", {"username": user.username, "password": PASSWORD}).json()["token"]
    assert new != old
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/customers/").status_code == 200


@pytest.mark.django_db
def test_rotating_a_token_retires_the_old_one():
    user = UserFactory(role=VIEWER)
    old = Token.objects.create(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    rotated = client.post("/api/token/rotate/")
    assert rotated.status_code == 201
    assert client.get("/api/customers/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {rotated.json()['token']}")
    assert client.get("/api/customers/").status_code == 200


@pytest.mark.parametrize("password", ["12345678901234", "password123", "short"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


@pytest.mark.django_db
def test_the_admin_role_reaches_the_admin_site_without_being_staff():
    user = UserFactory(role=ADMIN)
    assert not user.is_staff
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    viewer = UserFactory(role=VIEWER)
    client.force_login(viewer)
    assert client.get("/admin/").status_code == 302  # to the admin login


@pytest.mark.django_db
def test_every_page_carries_a_content_security_policy(viewer):
    client = Client()
    client.force_login(viewer)
    for url in ("/", "/accounts/login/", "/api/docs/", "/healthz"):
        policy = client.get(url).headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, url


@pytest.mark.django_db
def test_api_docs_load_swagger_from_this_site_not_a_cdn(viewer):
    client = Client()
    client.force_login(viewer)
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "https://" not in page
