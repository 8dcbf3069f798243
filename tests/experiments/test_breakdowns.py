"""experiments/breakdowns.py: a breakdown must name an attribute the units have (issue 11,
item 11: a Viewer's ?by=<anything> stored a report row per value), and the page and the
command break the primary metric down with Holm and the exploratory warning."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from statsmodels.stats.multitest import multipletests

from experiments import reports
from experiments.breakdowns import breakdown_check, breakdown_choices, breakdown_known
from experiments.models import Report
from experiments.services.exposures import exposures_record
from segments.services.membership import segment_create, segment_refresh
from tests.factories import CustomerFactory

from .factories import campaign_experiment, expose, order
from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    experiment = campaign_experiment()
    for i in range(12):
        customer = expose(experiment, "offer" if i % 2 else "holdout", attributes={"tier": "gold" if i % 3 else "std"})
        if i % 4 == 1:
            order(customer, days_after=1)
    return experiment


def test_known_attributes_and_customer_columns(experiment):
    assert breakdown_known(experiment, "tier") and breakdown_known(experiment, "country")
    assert not breakdown_known(experiment, "tierr")
    assert "country" in breakdown_choices(experiment)


def test_viewer_by_anything_stores_no_report_rows(viewer_api, experiment):
    for value in ("x1", "x2", "'; drop", "tierr"):
        response = viewer_api.get(f"/api/experiments/{experiment.id}/report/", {"by": value})
        assert response.status_code == 400 and "by" in response.json()
    assert not Report.objects.filter(experiment=experiment).exclude(by="").exists()
    assert viewer_api.get(f"/api/experiments/{experiment.id}/report/", {"by": "tier"}).status_code == 200
    assert list(Report.objects.filter(experiment=experiment).exclude(by="").values_list("by", flat=True)) == ["tier"]


def test_command_by_unknown_attribute_is_an_error(experiment):
    with pytest.raises(CommandError, match="no unit of this experiment has an attribute 'tierr'"):
        call_command("experiment_report", "spring", "--by", "tierr")


def test_report_page_breaks_down_with_the_exploratory_warning(client, viewer, experiment):
    client.force_login(viewer)
    page = client.get(f"/experiments/{experiment.id}/", {"by": "tier"}).content.decode()
    assert "Exploratory" in page and "Holm across segments" in page and "gold" in page
    page = client.get(f"/experiments/{experiment.id}/", {"by": "nope"}).content.decode()
    assert "no unit of this experiment has an attribute" in page


# --------------------------------------------------------------------------- by segment


def us_segment():
    segment = segment_create({"name": "us buyers", "kind": "rule",
                              "rule": {"field": "country", "op": "in", "value": ["US"]}})
    segment_refresh(segment)
    segment.refresh_from_db()
    return segment


def test_breakdown_by_segment_splits_members_at_the_start_with_holm_and_the_warning():
    rng = np.random.default_rng(12)
    customers = [CustomerFactory(country="US" if i % 3 else "FR") for i in range(120)]
    segment = us_segment()
    experiment = campaign_experiment(name="seg")
    start = timezone.now() + timedelta(minutes=1)  # after the refresh: the version current at the start
    buyers = {("member", "holdout"): 0, ("member", "offer"): 0, ("not a member", "holdout"): 0,
              ("not a member", "offer"): 0}
    sizes = dict.fromkeys(buyers, 0)
    for i, customer in enumerate(customers):
        arm = "offer" if i % 2 else "holdout"
        exposures_record(experiment, [(customer.id, arm, start)])
        group = "member" if customer.country == "US" else "not a member"
        sizes[(group, arm)] += 1
        if rng.random() < (0.5 if arm == "offer" and group == "member" else 0.2):
            order(customer, days_after=1, at=start)
            buyers[(group, arm)] += 1
    segment.refresh_from_db()

    body = reports.report_build(experiment, by="segment:us buyers", now=start + timedelta(days=30))

    assert_report_schema(body)
    breakdown = body["breakdown"]
    assert breakdown["segment"]["at_start"] is True and breakdown["segment"]["version"] == segment.current_version
    assert "exploratory" in breakdown["caveat"] and "when the experiment started" in breakdown["caveat"]
    groups = {s["value"]: s for s in breakdown["segments"]}
    assert set(groups) == {"member", "not a member"}
    p_values = []
    for value, group in groups.items():
        assert {a["name"]: a["n"] for a in group["arms"]} == {a: sizes[(value, a)] for a in ("holdout", "offer")}
        conversion = group["metrics"][0]
        rates = {r["arm"]: r["mean"] for r in conversion["arms"]}
        assert rates == pytest.approx({a: buyers[(value, a)] / sizes[(value, a)] for a in ("holdout", "offer")})
        p_values.append(conversion["comparisons"][0]["p_value"])
    holm = multipletests(p_values, method="holm")[1]
    adjusted = [g["metrics"][0]["comparisons"][0]["p_adjusted_across_segments"] for g in groups.values()]
    assert adjusted == pytest.approx(list(holm))
    assert "segment:us buyers" in breakdown_choices(experiment)


def test_a_segment_younger_than_the_experiment_reads_its_latest_membership_and_says_so(experiment):
    us_segment()

    body = reports.report_build(experiment, by="segment:us buyers")

    segment = body["breakdown"]["segment"]
    assert segment["at_start"] is False and "latest refresh" in segment["text"]
    assert "latest refresh" in body["breakdown"]["caveat"]


def test_an_unknown_segment_is_an_error_naming_it(experiment):
    with pytest.raises(CommandError, match="no segment named 'nope'"):
        call_command("experiment_report", "spring", "--by", "segment:nope")
    with pytest.raises(ValueError, match="no segment named 'nope'"):
        breakdown_check(experiment, "segment:nope")
