"""experiments/importers.py: per-unit results of a test run elsewhere, from CSV."""

import pytest

from experiments.importers import ImportFailed, experiment_import
from experiments.models import Experiment, Exposure
from tests.csvfiles import rejects_of, write as csv_write

pytestmark = pytest.mark.django_db


def write(tmp_path, text, name="units.csv"):
    return csv_write(tmp_path, text, name)


def run(path, **kwargs):
    options = dict(name="t", arm_column="arm", control="A", metrics=["bought:binary", "spend:continuous"])
    options.update(kwargs)
    return experiment_import(path, **options)


def test_every_bad_row_is_reported_with_its_line_and_reason_and_good_rows_kept(tmp_path):
    path = write(tmp_path, "id,arm,bought,spend,vip\n"
                           "u1,A,yes,10,true\n"
                           "u2,,no,0,false\n"          # line 3: no arm
                           "u3,B,maybe,0,false\n"      # line 4: not a boolean
                           "u4,B,1,lots,true\n"        # line 5: not a number
                           "u5,B,0\n"                  # line 6: too few fields
                           "u1,B,0,0,false\n"          # line 7: unit again
                           "u6,B,0,,true\n"            # line 8: blank outcome (refused on request)
                           "u7,B,0,0,false\n")
    result = run(path, unit_column="id", rejects_path=tmp_path / "rejects.csv", refuse_missing=True)

    reasons = rejects_of(result)
    assert (result.rows, result.imported, result.rejected) == (8, 2, 6)
    assert set(reasons) == {3, 4, 5, 6, 7, 8}
    assert "arm" in reasons[3] and "blank" in reasons[3]
    assert "bought" in reasons[4] and "maybe" in reasons[4]
    assert "spend" in reasons[5] and "lots" in reasons[5]
    assert "fields" in reasons[6]
    assert "duplicate unit 'u1', first on line 2" in reasons[7]
    assert "spend" in reasons[8] and "blank" in reasons[8]
    assert result.reject_samples[0] == {"line": 3, "reason": reasons[3]}


def test_without_a_unit_column_the_row_number_is_the_unit(tmp_path):
    path = write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\nB,1,2\n")
    run(path)
    assert list(Exposure.objects.order_by("id").values_list("unit", flat=True)) == ["1", "2", "3"]


def test_other_columns_are_kept_as_typed_unit_attributes(tmp_path):
    path = write(tmp_path, "arm,bought,spend,newbie,recency,channel\nA,1,5,1,10,Web\nB,0,0,0,3,Phone\n")
    result = run(path)
    assert result.attributes == {"newbie": "boolean", "recency": "integer", "channel": "text"}
    assert Exposure.objects.order_by("id").first().attributes == {"newbie": True, "recency": 10, "channel": "Web"}
    assert Exposure.objects.order_by("id").first().outcomes == {"bought": 1, "spend": 5.0}


def test_reimporting_a_name_is_refused_and_says_so(tmp_path):
    path = write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\n")
    run(path)
    with pytest.raises(ImportFailed, match=r"already exists.*refused, nothing was changed.*--replace"):
        run(write(tmp_path, "arm,bought,spend\nA,1,5\n", "other.csv"))
    assert Exposure.objects.count() == 2


def test_reimporting_with_replace_replaces_the_experiment(tmp_path):
    run(write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\n"))
    result = run(write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\nB,1,1\n", "v2.csv"), replace=True)
    assert result.action == "replaced" and "replaced" in result.summary()
    assert Experiment.objects.count() == 1
    assert Exposure.objects.count() == 3


def test_a_control_label_not_in_the_file_is_refused_with_the_labels_found(tmp_path):
    path = write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\n")
    with pytest.raises(ImportFailed, match=r"--control 'Z'.*\['A', 'B'\]"):
        run(path, control="Z")
    assert not Experiment.objects.exists()


def test_a_missing_column_is_named_with_the_header_found(tmp_path):
    path = write(tmp_path, "group,bought,spend\nA,1,5\n")
    with pytest.raises(ImportFailed, match=r"lacks --arm 'arm'.*'group'"):
        run(path)


def test_primary_picks_the_primary_metric_and_weights_set_the_planned_split(tmp_path):
    path = write(tmp_path, "arm,bought,spend\nA,1,5\nB,0,0\nB,1,1\n")
    result = run(path, primary="spend", weights={"A": 1, "B": 2})
    experiment = Experiment.objects.get(name="t")
    assert experiment.metrics.get(is_primary=True).name == "spend"
    assert result.metrics[0] == {"name": "spend", "kind": "continuous", "primary": True}
    assert dict(experiment.arms.values_list("name", "weight")) == {"A": 1.0, "B": 2.0}
