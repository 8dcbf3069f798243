"""experiments/services/reports.py: the stored report and when it is recomputed."""

import pytest

from experiments.models import Report
from experiments.services.reports import report_refresh

from ..factories import campaign_experiment, expose

pytestmark = pytest.mark.django_db


def test_a_fresh_stored_report_is_reused_and_new_exposures_make_it_recompute():
    experiment = campaign_experiment()
    expose(experiment, "offer")
    expose(experiment, "holdout")
    first = report_refresh(experiment)
    again = report_refresh(experiment)
    expose(experiment, "offer")
    after = report_refresh(experiment)

    assert again.computed_at == first.computed_at
    assert after.body["units"] == 3 and after.computed_at > first.computed_at
    assert Report.objects.filter(experiment=experiment).count() == 1
