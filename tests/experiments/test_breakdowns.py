"""experiments/breakdowns.py: a breakdown must name an attribute the units have (issue 11,
item 11: a Viewer's ?by=<anything> stored a report row per value), and the page and the
command break the primary metric down with Holm and the exploratory warning."""

import pytest
from django.core.management import CommandError, call_command

from experiments.breakdowns import breakdown_choices, breakdown_known
from experiments.models import Report

from .factories import campaign_experiment, expose, order

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
