"""The experiment pages a marketer and an analyst read."""

import numpy as np
import pytest
from celery import current_app

from core.models import Job

from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.services.uplift import uplift_model_train
from segments.models import Segment
from segments.services.membership import segment_refresh
from tests.experiments.factories import campaign_experiment, expose, order
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    exp = campaign_experiment("summer", retention_days=[7])
    for i in range(40):
        c = expose(exp, "holdout")
        if i % 8 == 0:
            order(c, days_after=2)
    for i in range(40):
        c = expose(exp, "offer")
        if i % 3 == 0:
            order(c, days_after=1 + i % 5)
    return exp


def test_the_report_page_shows_the_srm_banner_first_then_tables_and_charts(client, viewer, experiment):
    client.force_login(viewer)
    html = client.get(f"/experiments/{experiment.id}/").content.decode()
    assert html.index('id="srm"') < html.index("<h1>")
    assert "Sample ratio check passed" in html
    assert html.count("<svg") >= 3  # rates per arm for each metric, plus curves over time
    assert "Difference from holdout" in html and "Kaplan-Meier" in html
    assert "Recompute now" not in html  # a viewer changes nothing
    # The value columns say whose they are: the control's name, then "This arm" (not a second "Arm").
    assert '>holdout</th><th scope="col" class="num hide-sm">This arm</th>' in html


def test_the_curve_over_time_is_read_from_the_stored_report_at_any_size(client, viewer, experiment):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from experiments.models import Report
    from experiments.services.reports import report_refresh

    report = report_refresh(experiment)
    report.body["units"] = 800_000  # the page used to leave the curve out past 100,000 units
    Report.objects.filter(pk=report.pk).update(body=report.body)
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"/experiments/{experiment.id}/").content.decode()
    assert "Difference from holdout in the share who ordered, by days since exposure" in html
    assert not [q for q in queries.captured_queries if "experiments_exposure" in q["sql"] and "GROUP BY" in q["sql"]]


def test_a_report_stored_before_the_curve_existed_reads_as_stale(experiment):
    from experiments import selectors
    from experiments.models import Report
    from experiments.services.reports import report_refresh

    report = report_refresh(experiment)
    assert selectors.report_is_fresh(experiment, report)
    Report.objects.filter(pk=report.pk).update(fingerprint=report.fingerprint.replace("fmt:2;", ""))
    report.refresh_from_db()
    assert not selectors.report_is_fresh(experiment, report)  # the worker recomputes it


def test_a_marketer_can_recompute_and_a_viewer_cannot(client, viewer, marketer, experiment):
    client.force_login(viewer)
    assert client.post(f"/experiments/{experiment.id}/refresh/").status_code == 403
    client.force_login(marketer)
    assert client.post(f"/experiments/{experiment.id}/refresh/").status_code == 302


def test_exports_carry_the_same_numbers(client, viewer, experiment):
    client.force_login(viewer)
    body = client.get(f"/experiments/{experiment.id}/export.json").json()
    assert body["experiment"] == "summer" and body["units"] == 80
    csv_text = client.get(f"/experiments/{experiment.id}/export.csv").content.decode()
    assert "offer" in csv_text and "conversion" in csv_text


def test_the_list_shows_each_experiment_with_its_verdict(client, viewer, experiment):
    client.force_login(viewer)
    client.get(f"/experiments/{experiment.id}/")  # computes the report
    html = client.get("/experiments/").content.decode()
    assert "summer" in html and "ok" in html


def test_the_planner_answers_with_a_sample_size_and_explains_bad_input(client, viewer):
    client.force_login(viewer)
    html = client.get("/experiments/plan/", {"baseline": "5", "lift": "10"}).content.decode()
    assert "customers per arm" in html
    html = client.get("/experiments/plan/", {"baseline": "five"}).content.decode()
    assert "is not a number" in html


def test_the_top_of_an_uplift_model_becomes_a_segment_that_refreshes(client, marketer, tmp_path, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    rng = np.random.default_rng(5)
    n = 4000
    responsive, treated = rng.random(n) < 0.5, rng.random(n) < 0.5
    y = rng.random(n) < 0.05 + 0.25 * (treated & responsive)
    lines = ["arm,converted,responsive"] + [
        f"{'t' if t else 'c'},{int(c)},{'true' if r else 'false'}" for t, c, r in zip(treated, y, responsive)
    ]
    path = tmp_path / "planted.csv"
    path.write_text("\n".join(lines) + "\n")
    experiment_import(path, name="planted", arm_column="arm", control="c", metrics=["converted:binary"])
    model = uplift_model_train(Experiment.objects.get(name="planted"), "t", "converted", learner="logistic")
    keen = CustomerFactory.create_batch(4, attributes={"responsive": True})
    CustomerFactory.create_batch(4, attributes={"responsive": False})

    client.force_login(marketer)
    assert "Qini" in client.get(f"/experiments/uplift/{model.id}/").content.decode()
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)  # the job runs here, on commit
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/experiments/uplift/{model.id}/segment/", {"top": "50", "name": "keen"})

    segment = Segment.objects.get(name="keen")
    assert response.url == f"/experiments/uplift/{model.id}/"
    job = Job.objects.get(kind="uplift_segment")
    assert job.state == "done" and job.result["url"] == f"/segments/{segment.id}/"
    assert segment.kind == "uplift" and segment.size == 4
    assert set(segment.memberships.filter(version=segment.current_version).values_list("customer_id", flat=True)) == {
        c.id for c in keen
    }
    segment_refresh(segment)  # refreshes from the stored scores like any model segment
    segment.refresh_from_db()
    assert segment.size == 4 and segment.current_version == 2
