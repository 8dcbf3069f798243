"""experiments/kinds.py: every metric kind, read from the table, goes through the whole report."""

import json

import numpy as np
import pytest

from experiments import analysis, presentation
from experiments.analysis import ArmData, ArmSpec, Design, MetricSpec
from experiments.kinds import KINDS, kind_get, sql_fill

from .report_schema import assert_report_schema


def _name(kind_name: str) -> str:
    if kind_get(kind_name).units_only:
        return f"{kind_name}(y)"  # a quantile names its column: median(y)
    return "y/z" if kind_name == "ratio" else "y"  # a ratio is named NUMERATOR/DENOMINATOR


def _arm(values: np.ndarray, kind_name: str) -> ArmData:
    """Aggregates of per-unit values as SQL computes them from the kind's templates."""
    kind = kind_get(kind_name)
    parts = [(f"v{i}", []) for i in range(len(kind.columns(_name(kind_name))))]
    # A kind reading several values per unit (a ratio) gets the effect in its first value
    # and the same distribution in the others.
    others = np.random.default_rng(2).uniform(1, 2, (len(parts), len(values)))
    scope = {"SUM": np.sum, "COUNT": len, "AVG": np.mean, "VAR_SAMP": lambda x: np.var(x, ddof=1),
             "COVAR_SAMP": lambda x, y: np.cov(x, y, ddof=1)[0, 1],
             "v0": values, **{f"v{i}": others[i] for i in range(1, len(parts))}}
    sums = tuple(float(eval(sql_fill(a, parts)[0], scope)) for a in kind.aggregates)  # noqa: S307
    return ArmData(len(values), {_name(kind_name): sums})


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_gives_a_report_with_the_contract_and_its_own_spelling(name):
    kind = KINDS[name]
    rng = np.random.default_rng(1)
    control = (rng.random(4000) < 0.10).astype(float) if kind.share else rng.normal(10, 3, 4000)
    treatment = (rng.random(4000) < 0.13).astype(float) if kind.share else rng.normal(10.4, 3, 4000)
    design = Design("k", [ArmSpec("control", 1, True), ArmSpec("treatment", 1, False)],
                    [MetricSpec(_name(name), name, True)])

    units = {_name(name): {"control": control, "treatment": treatment}} if kind.units_only else None
    body = analysis.analyze(design, {"control": _arm(control, name), "treatment": _arm(treatment, name)},
                            unit_values=units)

    assert_report_schema(body)
    json.dumps(body, allow_nan=False)
    metric = body["metrics"][0]
    assert metric["kind"] == name and metric["comparisons"][0]["significant"]
    assert body["methods"][name] == kind.method and body["power"]["method"] == kind.power_method
    assert kind.diff_text(metric["comparisons"][0]["diff"]) in presentation.report_text(body)


def test_an_unknown_kind_is_refused_naming_the_kinds():
    with pytest.raises(ValueError, match="one of binary"):
        kind_get("ratio-of-nothing")


def test_sql_fill_repeats_each_values_params_where_it_appears():
    assert sql_fill("SUM({v0} * {v1}) + {v0}", [("a(%s)", [1]), ("b", [])]) == ("SUM(a(%s) * b) + a(%s)", [1, 1])
    assert sql_fill("CASE WHEN {v} > 0 THEN 1 ELSE 0 END", [("x", [])])[0] == "CASE WHEN x > 0 THEN 1 ELSE 0 END"
