"""Every page needs a login and the right role; health needs neither."""

import pytest

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/customers/", "/api/customers/", "/api/schema/"])
def test_pages_refuse_anonymous_visitors(client, url):
    response = client.get(url)
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert response.url.startswith("/accounts/login/")


def test_a_logged_in_user_without_a_role_is_refused(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw-nobody-123")
    client.force_login(user)
    assert client.get("/customers/").status_code == 403


def test_a_viewer_sees_customers_and_a_customer_page(client, viewer):
    customer = CustomerFactory(name="Ada Lovelace")
    client.force_login(viewer)
    assert "Ada Lovelace" in client.get("/customers/?q=Ada").content.decode()
    assert client.get(f"/customers/{customer.id}/").status_code == 200


def test_the_login_page_logs_in(client, viewer):
    response = client.post("/accounts/login/", {"username": viewer.username, "password": "pw-for-tests-only"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_viewer_can_see_imports_but_not_upload(client, viewer):
    client.force_login(viewer)
    page = client.get("/customers/imports/")
    assert page.status_code == 200 and b"Upload" not in page.content
    assert client.post("/customers/imports/upload/", {"kind": "customers"}).status_code == 403


def test_links_to_a_customer_lead_to_its_page_not_the_api(client, viewer):
    customer = CustomerFactory(name="Linked Person")
    client.force_login(viewer)
    html = client.get("/customers/?q=Linked").content.decode()
    assert f'href="/customers/{customer.id}/"' in html
