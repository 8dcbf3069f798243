"""The migration page (segments/migration_views.py): moves between a family's segments."""

import pytest

from segments.services import membership

pytestmark = pytest.mark.django_db


def test_the_migration_page_says_what_to_do_with_nothing_trained(client, viewer):
    client.force_login(viewer)
    assert "train a model" in client.get("/segments/migration/").content.decode()


def test_the_migration_page_reads_the_moves_its_refresh_counted(client, viewer, base, django_assert_max_num_queries):
    from segments.models import FamilyTransition

    tiers = [membership.segment_create({"name": n, "family": "where", "rank": r, "rule": {
        "field": "country", "op": "eq", "value": c}}) for n, r, c in (("us", 0, "US"), ("fr", 1, "FR"))]
    membership.segment_refresh(tiers[0])
    membership.segment_refresh(tiers[0])
    assert FamilyTransition.objects.filter(family="where", old_version=1, new_version=2).exists()
    client.force_login(viewer)
    with django_assert_max_num_queries(20):  # no join of memberships: a stored row
        html = client.get("/segments/migration/?family=where").content.decode()
    assert "8 stayed, 0 moved" in html


def test_a_pair_of_refreshes_nobody_counted_goes_to_a_worker_not_a_join_in_the_page(
        client, viewer, base, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.models import Job
    from segments.models import FamilyTransition
    from segments.tasks import family_moves_store

    tiers = [membership.segment_create({"name": n, "family": "where", "rank": r, "rule": {
        "field": "country", "op": "eq", "value": c}}) for n, r, c in (("us", 0, "US"), ("fr", 1, "FR"))]
    membership.segment_refresh(tiers[0])
    membership.segment_refresh(tiers[0])
    FamilyTransition.objects.all().delete()  # refreshed before moves were counted at refresh
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
        html = client.get("/segments/migration/?family=where").content.decode()
    assert not [q for q in queries.captured_queries if "FULL OUTER JOIN" in q["sql"]]
    assert 'id="moves-pending"' in html and 'data-job-state="queued"' in html and "stayed" not in html
    job = Job.objects.get(kind="family_moves")
    assert job.args == ["where", 1, 2]
    client.get("/segments/migration/?family=where")
    assert Job.objects.filter(kind="family_moves").count() == 1  # one job, however often the page is read
    family_moves_store(*job.args)  # the worker's part
    html = client.get("/segments/migration/?family=where").content.decode()
    assert "From refresh 1 to 2: 8 stayed, 0 moved" in html and 'id="moves-pending"' not in html


def test_a_family_refreshed_once_shows_everyone_entering_from_the_refresh_sizes(client, viewer, base):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tiers = [membership.segment_create({"name": n, "family": "where", "rank": r, "rule": {
        "field": "country", "op": "eq", "value": c}}) for n, r, c in (("us", 0, "US"), ("fr", 1, "FR"))]
    membership.segment_refresh(tiers[0])
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/segments/migration/?family=where").content.decode()
    assert not [q for q in queries.captured_queries if "FULL OUTER JOIN" in q["sql"]]
    assert "At refresh 1, the first kept: 0 stayed, 0 moved, 8 entered, 0 left." in html
