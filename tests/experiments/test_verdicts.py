"""experiments/verdicts.py: the engine switch on the command, the API and the report page."""

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from experiments import reports

from .factories import campaign_experiment, expose, order
from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    experiment = campaign_experiment()
    rng = np.random.default_rng(2)
    for arm, rate in (("holdout", 0.2), ("offer", 0.5)):
        for bought in rng.random(40) < rate:
            customer = expose(experiment, arm)
            if bought:
                order(customer, days_after=1)
    return experiment


def test_bayesian_engine_in_json_has_chance_to_win_loss_and_interval(experiment):
    out = StringIO()
    call_command("experiment_report", "spring", "--json", "--engine", "bayesian", stdout=out)
    body = json.loads(out.getvalue())
    assert_report_schema(body)
    assert body["engine"] == "bayesian" and body["verdict"].startswith("Bayesian engine")
    for metric in body["metrics"][:2]:  # conversion and revenue; nobody visited, so visit has no read
        for comp in metric["comparisons"]:
            assert 0 <= comp["chance_to_win"] <= 1
            assert comp["expected_loss"] >= 0
            lo, hi = comp["credible_interval"]
            assert lo < comp["posterior_mean"] < hi
    assert body["metrics"][2]["comparisons"][0]["chance_to_win"] is None


def test_default_engine_is_frequentist_and_says_so(experiment):
    out = StringIO()
    call_command("experiment_report", "spring", "--json", stdout=out)
    body = json.loads(out.getvalue())
    assert body["engine"] == "frequentist" and "(Frequentist engine.)" in body["verdict"]
    assert body["verdicts"]["bayesian"].startswith("Bayesian engine")


def test_api_engine_parameter(viewer_api, experiment):
    good = viewer_api.get(f"/api/experiments/{experiment.id}/report/?engine=bayesian")
    bad = viewer_api.get(f"/api/experiments/{experiment.id}/report/?engine=oracle")
    assert good.status_code == 200 and good.json()["engine"] == "bayesian"
    assert bad.status_code == 400 and "engine" in bad.json()


def test_report_page_switches_engine(client, viewer, experiment):
    client.force_login(viewer)
    page = client.get(f"/experiments/{experiment.id}/?engine=bayesian").content.decode()
    assert "Chance to win" in page and "Bayesian engine" in page
    page = client.get(f"/experiments/{experiment.id}/").content.decode()
    assert "Chance to win" not in page and "p-value" in page


def test_configured_prior_is_used_and_described(experiment):
    experiment.prior = {"mean": 0.0, "variance": 0.0001, "proper": True}
    experiment.save()
    body = reports.report_build(experiment)
    flat = campaign_experiment(name="flat")
    assert body["prior"]["proper"] and "normal prior" in body["verdicts"]["bayesian"]
    comp = body["metrics"][0]["comparisons"][0]
    assert abs(comp["posterior_mean"]) < 0.02  # a tight prior at 0 pulls a large lift to nearly 0
    assert flat.prior == {}
