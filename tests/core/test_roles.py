"""Walk every URL with every role: anonymous visitors are sent to log in, a Viewer can read
everything and change nothing, a Marketer can use every page."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from campaigns.models import OutboxMessage
from customers.models import ImportJob
from tests.experiments.factories import campaign_experiment, expose
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# Pages anyone may reach: health, login, one-click unsubscribe, provider webhooks (which
# authenticate the provider themselves).
PUBLIC = re.compile(r"^/(healthz|accounts/login/|u/|webhooks/)")
# POSTs that only read: previews and estimates compute, they save nothing.
READ_ONLY_POSTS = re.compile(
    r"^/(segments/builder/preview/|api/segments/preview/|api/experiments/plan/|accounts/logout/|api/token/)"
)
SKIP = re.compile(r"^/(admin/|static/|api/docs/)|\.(?P<format>[a-z0-9]+)/?$|\\")


def _walk(patterns, prefix=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route


@pytest.fixture
def urls():
    customer = CustomerFactory()
    job = ImportJob.objects.create(kind="customers", path="x", status="done", result={})
    message = OutboxMessage.objects.create(message_id="m1", from_email="a@example.com", subject="s")
    experiment = campaign_experiment("walk")
    expose(experiment, "offer")
    values = {
        "customer_id": customer.id, "job_id": job.id, "message_id": message.id, "experiment_id": experiment.id,
        "pk": 1, "id": 1, "segment_id": 1, "model_id": 1, "campaign_id": 1, "action": "launch", "token": "x",
    }
    found = set()
    for route in _walk(get_resolver().url_patterns):
        route = route.replace("^", "").replace("$", "")
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), 1)), route)
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values.get(m.group(1), 1)), path)
        if not SKIP.search(path) and "(" not in path:
            found.add(path)
    return sorted(found)


def test_anonymous_visitors_are_sent_to_log_in_except_on_public_pages(client, urls):
    for url in urls:
        if PUBLIC.match(url):
            continue
        response = client.get(url)
        assert response.status_code in (302, 401, 403, 404, 405), url
        if response.status_code == 302:
            assert response.url.startswith("/accounts/login/"), url


def test_a_viewer_can_post_nowhere_that_writes(client, viewer, urls):
    client.force_login(viewer)
    for url in urls:
        if PUBLIC.match(url) or READ_ONLY_POSTS.match(url):
            continue
        response = client.post(url, {})
        assert response.status_code in (403, 404, 405), f"{url} answered {response.status_code} to a viewer's POST"


def test_a_viewer_reads_every_page_without_errors(client, viewer, urls):
    client.force_login(viewer)
    for url in urls:
        if PUBLIC.match(url):
            continue
        response = client.get(url)
        # 400: an endpoint that needs parameters says which; 403: a Marketer's form or action.
        assert response.status_code in (200, 302, 400, 403, 404, 405), f"{url} answered {response.status_code} to a viewer"
        if response.status_code == 302:
            assert not response.url.startswith("/accounts/login/"), url


def test_a_marketer_opens_every_page_without_errors(client, marketer, urls):
    client.force_login(marketer)
    for url in urls:
        if PUBLIC.match(url):
            continue
        assert client.get(url).status_code in (200, 302, 400, 404, 405), url
