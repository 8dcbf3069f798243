"""experiments/services/exposures.py: who saw which arm, written once per unit."""

from datetime import timedelta

import pytest

from core.db import db_datetime
from customers.models import Customer
from experiments.importers import experiment_import
from experiments.models import Experiment, Exposure
from experiments.services.definitions import ExperimentError
from experiments.selectors import exposure_span
from experiments.services.exposures import exposures_insert_from_sql, exposures_record
from tests.factories import CustomerFactory

from ..factories import EXPOSED_AT, campaign_experiment

pytestmark = pytest.mark.django_db


def test_recording_the_same_exposures_twice_adds_nothing():
    experiment = campaign_experiment()
    customers = CustomerFactory.create_batch(3)
    rows = [(c.id, "offer", EXPOSED_AT) for c in customers]

    first = exposures_record(experiment, rows)
    second = exposures_record(experiment, rows)

    assert (first, second) == (3, 0)
    assert Exposure.objects.filter(experiment=experiment).count() == 3


def test_an_unknown_arm_is_refused_and_nothing_is_written():
    experiment = campaign_experiment()
    customer = CustomerFactory()
    with pytest.raises(ExperimentError, match="unknown arm"):
        exposures_record(experiment, [(customer.id, "nope", EXPOSED_AT)])
    assert not Exposure.objects.exists()


def test_exposures_from_sql_are_inserted_set_based_and_once():
    experiment = campaign_experiment()
    CustomerFactory.create_batch(4)
    table = Customer._meta.db_table
    sql = (f"SELECT id AS customer_id, CASE WHEN id %% 2 = 0 THEN 'offer' ELSE 'holdout' END AS arm, "
           f"%s AS exposed_at FROM {table}")
    at = db_datetime(EXPOSED_AT)

    assert exposures_insert_from_sql(experiment, sql, [at]) == 4
    assert exposures_insert_from_sql(experiment, sql, [at]) == 0
    exposure = Exposure.objects.filter(experiment=experiment).first()
    assert exposure.unit == str(exposure.customer_id) and exposure.exposed_at == EXPOSED_AT


def test_an_imported_experiment_takes_no_customer_exposures(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arm,y\na,1\nb,0\n")
    experiment_import(path, name="imp", arm_column="arm", control="a", metrics=["y:binary"])
    with pytest.raises(ExperimentError, match="imported"):
        exposures_record(Experiment.objects.get(name="imp"), [])


def test_the_experiments_span_takes_in_every_exposure_written_and_no_skipped_one():
    experiment = campaign_experiment()
    a, b, c = CustomerFactory.create_batch(3)
    assert exposure_span(experiment) == (None, None)
    exposures_record(experiment, [(a.id, "offer", EXPOSED_AT)])
    assert exposure_span(experiment) == (EXPOSED_AT, EXPOSED_AT)
    day = timedelta(days=1)
    exposures_record(experiment, [(b.id, "offer", EXPOSED_AT + 2 * day), (c.id, "holdout", EXPOSED_AT - day)])
    # `a` again, later: already exposed, so skipped, and its time is no exposure's.
    exposures_record(experiment, [(a.id, "offer", EXPOSED_AT + 9 * day)])
    assert exposure_span(experiment) == (EXPOSED_AT - day, EXPOSED_AT + 2 * day)


def test_an_edit_saved_from_an_instance_loaded_before_the_exposures_keeps_their_span():
    experiment = campaign_experiment()
    stale = Experiment.objects.get(id=experiment.id)
    exposures_record(experiment, [(CustomerFactory().id, "offer", EXPOSED_AT)])
    stale.description = "edited after launch"
    stale.save()
    assert Experiment.objects.get(id=experiment.id).description == "edited after launch"
    assert exposure_span(experiment) == (EXPOSED_AT, EXPOSED_AT)
