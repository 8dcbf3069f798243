"""The segment pages (segments/views.py): the builder with a live count, the segment page, edit and duplicate."""

import json
import re

import pytest

from segments.services import membership
from segments.models import Segment

pytestmark = pytest.mark.django_db


def test_the_preview_counts_the_rule_being_built(client, marketer, base):
    client.force_login(marketer)
    one = client.post("/segments/builder/preview/", {"row": ["0"], "c0_field": "country", "c0_op": "eq", "c0_value": "US"})
    assert '<strong id="preview-count">5</strong>' in one.content.decode()
    two = client.post("/segments/builder/preview/", {
        "row": ["0", "1"], "combine": "all",
        "c0_field": "country", "c0_op": "eq", "c0_value": "US",
        "c1_field": "attributes.vip", "c1_op": "eq", "c1_value": "true",
    })
    assert '<strong id="preview-count">3</strong>' in two.content.decode()


def test_on_a_large_base_the_preview_says_its_count_is_an_estimate(client, marketer, base, monkeypatch):
    from segments import selectors

    monkeypatch.setattr(selectors, "PREVIEW_EXACT_MAX", -1)
    monkeypatch.setattr(selectors, "PREVIEW_BLOCK", 2)
    monkeypatch.setattr(selectors, "PREVIEW_SAMPLE", 8)
    monkeypatch.setattr(selectors, "_count_is_cheap", lambda *args: False)  # as a full scan would be at 1M
    client.force_login(marketer)
    html = client.post("/segments/builder/preview/", {"row": ["0"], "c0_field": "country", "c0_op": "eq",
                                                      "c0_value": "US"}).content.decode()
    assert '<strong id="preview-count">about 5</strong>' in html
    assert "estimated from a sample of 8" in html and "of about 8." in html


def test_a_bad_value_is_reported_naming_its_condition_not_a_json_path(client, viewer, base):
    client.force_login(viewer)
    html = client.post("/segments/builder/preview/", {"row": ["0", "1"], "c0_field": "country", "c0_op": "eq",
                                                      "c0_value": "US", "c1_field": "attributes.vip", "c1_op": "eq",
                                                      "c1_value": "perhaps"}).content.decode()
    assert "Condition 2 (vip): Expected true or false, got a text" in html
    assert "rule.all[1].value" not in html and "for attributes.vip" not in html


def test_the_json_box_takes_nested_rules(client, viewer, base):
    client.force_login(viewer)
    rule = {"any": [{"field": "country", "op": "eq", "value": "FR"}, {"not": {"field": "attributes.vip", "op": "eq", "value": True}}]}
    html = client.post("/segments/builder/preview/", {"rule_json": json.dumps(rule)}).content.decode()
    assert '<strong id="preview-count">5</strong>' in html  # 3 FR + 2 non-vip Americans


def test_a_row_offers_the_operators_of_its_field(client, viewer, base):
    client.force_login(viewer)
    html = client.get("/segments/builder/row/", {"index": "3", "c3_field": "attributes.vip"}).content.decode()
    assert 'name="c3_op"' in html and '<option value="eq">is</option>' in html and "contains" not in html


def test_a_numeric_field_suggests_no_internal_metadata(client, viewer, base):
    client.force_login(viewer)
    html = client.get("/segments/builder/row/", {"index": "0", "c0_field": "monetary"}).content.decode()
    assert "<datalist" not in html and "feature" not in html and "[&#x27;" not in html
    assert '<option value="lte">is at most</option>' in html


def test_add_condition_numbers_the_new_row_after_the_rows_sent(client, viewer, base):
    # The button sends the rows there are (hx-include) instead of counting them in script,
    # which the Content-Security-Policy would block.
    client.force_login(viewer)
    html = client.get("/segments/builder/row/", {"c0_field": "country", "c2_field": "attributes.vip"}).content.decode()
    assert 'id="c3_field"' in html
    assert 'id="c0_field"' in client.get("/segments/builder/row/").content.decode()


def test_saving_counts_the_members_in_a_background_job_the_segment_page_shows(
        client, marketer, base, django_capture_on_commit_callbacks):
    from core.models import Job

    client.force_login(marketer)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/segments/new/", {"name": "Americans", "row": ["0"], "c0_field": "country",
                                                  "c0_op": "eq", "c0_value": "US"})
    segment = Segment.objects.get(name="Americans")
    assert response.url == f"/segments/{segment.id}/"
    assert segment.refreshed_at is None and segment.size == 0  # not counted inside the request
    job = Job.objects.get(target=f"segments.segment:{segment.id}")
    assert job.task == "segments.tasks.segment_refresh" and job.state == Job.State.QUEUED and len(queued) == 1
    html = client.get(response.url).content.decode()
    assert 'data-job-state="queued"' in html and "members not counted yet" in html and "0</strong> customers" not in html
    assert "Americans" in client.get("/segments/").content.decode()


def test_the_new_segment_job_counts_its_members(client, marketer, base, django_capture_on_commit_callbacks):
    from config.celery import app
    from core.models import Job

    client.force_login(marketer)
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/segments/new/", {"name": "Americans", "row": ["0"], "c0_field": "country",
                                                      "c0_op": "eq", "c0_value": "US"})
    finally:
        app.conf.task_always_eager = False
    segment = Segment.objects.get(name="Americans")
    assert segment.size == 5 and Job.objects.get().state == Job.State.DONE
    html = client.get(response.url).content.decode()
    assert "<strong>5</strong> customers" in html and 'data-job-state="done"' in html and "p0" in html


def test_a_viewer_cannot_save_or_refresh(client, viewer, base):
    client.force_login(viewer)
    assert client.post("/segments/new/", {"name": "x"}).status_code == 403
    segment = membership.segment_create({"name": "all-us", "rule": {"field": "country", "op": "eq", "value": "US"}})
    assert client.post(f"/segments/{segment.id}/refresh/").status_code == 403


@pytest.fixture
def americans(base, marketer):
    segment = membership.segment_create({"name": "Americans", "rule": {"all": [
        {"field": "country", "op": "eq", "value": "US"}]}}, user=marketer)
    membership.segment_refresh(segment)
    return segment


def test_a_saved_rule_shows_as_a_sentence_not_a_dict(client, viewer, americans):
    client.force_login(viewer)
    html = client.get(f"/segments/{americans.id}/").content.decode()
    assert "Customers whose Country is US." in html and "{&#x27;all" not in html


def test_editing_a_segment_prefills_the_builder_and_keeps_the_earlier_revision(client, marketer, americans,
                                                                               django_capture_on_commit_callbacks):
    client.force_login(marketer)
    form = client.get(f"/segments/{americans.id}/edit/").content.decode()
    assert 'value="US"' in form and '<option value="eq" selected>is</option>' in form
    with django_capture_on_commit_callbacks():
        response = client.post(f"/segments/{americans.id}/edit/", {
            "name": "Americans", "combine": "all", "row": ["0", "1"], "c0_field": "country", "c0_op": "eq",
            "c0_value": "US", "c1_field": "attributes.vip", "c1_op": "eq", "c1_value": "true"})
    assert response.url == f"/segments/{americans.id}/"
    americans.refresh_from_db()
    assert americans.rule["all"][1] == {"field": "attributes.vip", "op": "eq", "value": True}
    assert list(americans.revisions.values_list("revision", flat=True)) == [2, 1]
    html = client.get(f"/segments/{americans.id}/").content.decode()
    assert "Definition history" in html and "Customers whose Country is US and whose vip is true" in html


def test_a_segment_saved_as_one_bare_condition_opens_in_the_builder_rows_not_the_json_box(client, marketer, base):
    segment = membership.segment_create({"name": "French", "rule": {"field": "country", "op": "ne", "value": "FR"}})
    client.force_login(marketer)
    form = client.get(f"/segments/{segment.id}/edit/").content.decode()
    assert '<option value="country" selected' in form and '<option value="ne" selected>is not</option>' in form
    assert 'value="FR"' in form and "<details open" not in form


def test_a_refused_edit_names_the_condition_and_changes_nothing(client, marketer, americans):
    client.force_login(marketer)
    response = client.post(f"/segments/{americans.id}/edit/", {
        "name": "Americans", "row": ["0"], "c0_field": "attributes.vip", "c0_op": "eq", "c0_value": "perhaps"}, follow=True)
    assert "Condition 1 (vip):" in response.content.decode()
    americans.refresh_from_db()
    assert americans.rule == {"all": [{"field": "country", "op": "eq", "value": "US"}]}


def test_duplicate_makes_a_copy_and_opens_it_for_editing(client, marketer, americans):
    client.force_login(marketer)
    response = client.post(f"/segments/{americans.id}/duplicate/")
    copy = Segment.objects.get(name="Copy of Americans")
    assert response.url == f"/segments/{copy.id}/edit/" and copy.rule == americans.rule
    client.post(f"/segments/{americans.id}/duplicate/")
    assert Segment.objects.filter(name="Copy 2 of Americans").exists()


# ------------------------------------------------------------------ the segment page's members, by keyset


@pytest.fixture
def germans(base):
    """A refreshed segment of 60 members: pages of 25, 25 and 10 walking forward."""
    from tests.factories import CustomerFactory

    ids = sorted(c.id for c in CustomerFactory.create_batch(60, country="DE"))
    segment = membership.segment_create({"name": "Germans", "rule": {"field": "country", "op": "eq", "value": "DE"}})
    membership.segment_refresh(segment)
    return segment, ids


def _member_ids(html: str) -> list[int]:
    members = html.split("<h2>Members</h2>", 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'href="/customers/(\d+)/"', members)]


def _pager_link(html: str, label: str) -> str | None:
    pager = html.split('aria-label="Member pages"', 1)[1].split("</nav>", 1)[0]
    found = re.search(r'<a href="([^"]*)"[^>]*>' + label + "</a>", pager)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_first_page_of_members_is_the_lowest_ids_with_next_and_last_but_no_previous(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    html = client.get(f"/segments/{segment.id}/").content.decode()
    assert _member_ids(html) == ids[:25]
    assert _pager_link(html, "Next") == f"?after={ids[24]}" and _pager_link(html, "Last") == "?last=1"
    assert _pager_link(html, "Previous") is None and _pager_link(html, "First") is None


def test_next_and_previous_walk_the_members_by_id(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    url = f"/segments/{segment.id}/"
    second = client.get(url + _pager_link(client.get(url).content.decode(), "Next")).content.decode()
    assert _member_ids(second) == ids[25:50]
    third = client.get(url + _pager_link(second, "Next")).content.decode()
    assert _member_ids(third) == ids[50:] and _pager_link(third, "Next") is None
    back = client.get(url + _pager_link(third, "Previous")).content.decode()
    assert _member_ids(back) == ids[25:50] and _pager_link(back, "Next") == f"?after={ids[49]}"
    first = client.get(url + _pager_link(back, "Previous")).content.decode()
    assert _member_ids(first) == ids[:25] and _pager_link(first, "Previous") is None


def test_the_last_page_is_the_highest_ids_and_leads_back(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    url = f"/segments/{segment.id}/"
    last = client.get(url + "?last=1").content.decode()
    assert _member_ids(last) == ids[-25:]
    assert _pager_link(last, "Next") is None and _pager_link(last, "Last") is None
    assert _pager_link(last, "Previous") == f"?before={ids[-25]}" and _pager_link(last, "First") == "?"
    assert _member_ids(client.get(url + _pager_link(last, "Previous")).content.decode()) == ids[-50:-25]


def test_members_only_of_the_segment_and_its_current_version(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    membership.segment_refresh(segment)  # a second version: the first one's rows are not read
    html = client.get(f"/segments/{segment.id}/?last=1").content.decode()
    assert _member_ids(html) == ids[-25:]  # no American from `base`, no row twice


@pytest.mark.parametrize("query", ["?after=abc", "?before=-4", "?after=1e9", "?after=", "?before=x&after=-1"])
def test_a_bad_cursor_gives_the_first_page_not_an_error(client, viewer, germans, query):
    segment, ids = germans
    client.force_login(viewer)
    response = client.get(f"/segments/{segment.id}/{query}")
    assert response.status_code == 200 and _member_ids(response.content.decode()) == ids[:25]


def test_an_old_numbered_page_link_leads_to_the_first_page(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    response = client.get(f"/segments/{segment.id}/?page=3")
    assert response.status_code == 302 and response.url == f"/segments/{segment.id}/"
    assert _member_ids(client.get(response.url).content.decode()) == ids[:25]


def test_past_the_last_member_is_an_empty_page_that_leads_to_the_first(client, viewer, germans):
    segment, ids = germans
    client.force_login(viewer)
    html = client.get(f"/segments/{segment.id}/?after={ids[-1]}").content.decode()
    assert _member_ids(html) == [] and _pager_link(html, "First") == "?" and _pager_link(html, "Next") is None
