import pytest


@pytest.mark.django_db
def test_healthz_answers_without_login_and_reports_database_and_broker(client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["database"]["ok"] and body["broker"]["ok"] and body["status"] == "ok"


@pytest.mark.django_db
def test_healthz_says_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False


@pytest.mark.django_db
def test_anonymous_healthz_hides_hosts_ports_and_error_text(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": True, "detail": "ok"}
    assert body["broker"] == {"ok": False, "detail": "unavailable"}
    assert "127.0.0.1" not in response.content.decode() and "Error" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_healthz_details_are_for_admins_only(client, settings, request, role):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.force_login(request.getfixturevalue(role))
    assert client.get("/healthz").json()["broker"]["detail"] == "unavailable"


@pytest.mark.django_db
def test_an_admin_sees_what_failed_and_where(client, settings, admin_user):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.force_login(admin_user)
    body = client.get("/healthz").json()
    assert body["database"]["detail"] in ("sqlite", "postgresql")
    assert body["broker"]["ok"] is False and "Error" in body["broker"]["detail"]
