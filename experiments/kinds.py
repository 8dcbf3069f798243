"""Metric kinds as data: the one table a new kind of metric is added to. Pure, no Django.

Each kind names what every layer needs from it:
- SQL (outcomes.py): how a unit's total in the window becomes its value, and the aggregates
  per arm that ``analyze`` reads back, in that order. ``{v}`` stands for the unit's value; a
  kind measured from several values per unit (a ratio: numerator and denominator) names
  them ``{v0}``, ``{v1}``... in the order ``columns`` gives their outcome keys;
- the statistics (stats/): the test and interval, from those aggregates (and from per-unit
  values where the kind supports CUPED);
- power: achieved power and detectable effect for the report's power section; the inputs
  the sample-size planner needs;
- import: how a cell of an imported file becomes a unit's value;
- people: how its means, differences and intervals read (core.formatting), and the methods
  the report quotes.

``name`` is what Metric.kind stores and the report JSON says: it never changes.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core import formatting, parsing

from .stats import means, planning, proportions, quantile, ratio

Aggregates = tuple[float, ...]  # one value per MetricKind.aggregates entry
ArmTotals = tuple[int, Aggregates]  # units in the arm, its aggregates


@dataclass(frozen=True)
class Power:
    """What the power section needs about the control arm, and the effect asked about."""

    control_mean: float | None
    control_n: int
    control_aggregates: Aggregates
    treatment_n: int
    effect: float
    relative: bool
    alpha: float
    target: float
    sd: float | None = None  # a standard deviation to use instead (CUPED's adjusted one)


@dataclass(frozen=True)
class MetricKind:
    name: str
    label: str  # what the import option and the API say it is
    # True when a unit's value is 0 or 1 and its mean a share: SQL counts converters with a
    # semi-join, charts plot percentages, the uplift model is a classifier.
    share: bool
    unit_value_sql: str  # from the unit's total {v} to its value
    aggregates: tuple[str, ...]  # SQL aggregate of the unit values {v}, per arm
    parse: Callable[[str], float]  # a cell of an imported file to the unit's value
    analyze: Callable[..., dict]  # (name, {arm: ArmTotals}, control, **options) -> metric section
    analyze_units: Callable[..., dict] | None  # per-unit values (CUPED), or None: not supported
    power: Callable[[Power], dict]  # power, underpowered, mde_absolute, mde_relative; ValueError if none
    plan_input: str  # what the sample-size planner needs besides the effect: "baseline" or "sd"
    method: str
    sequential_method: str
    power_method: str
    value_text: Callable[[float | None], str]
    diff_text: Callable[[float | None], str]
    interval_text: Callable[[Sequence[float | None]], str]
    effect_text: Callable[[float], str]  # an absolute effect of interest, in words
    # The outcome keys (imported file columns) a metric of this kind named ``name`` reads.
    columns: Callable[[str], list[str]] = lambda name: [name]
    # The aggregates over the units that have a row, merged with (n - count) units whose
    # values are all 0 (customer units with no order or event in the window). Every kind's
    # first aggregate is COUNT: the units with a value, so n - count are missing.
    with_zeros: Callable[[Aggregates, int], Aggregates] = lambda aggregates, n: aggregates
    unit_mean: Callable[[Aggregates], float | None] = lambda aggregates: aggregates[1]
    # True when the statistics need every unit's value (a quantile): analyze_units is called
    # with them, and the SQL aggregates only count the units with a value.
    units_only: bool = False
    # The same as unit_value_sql and aggregates, over per-unit arrays in numpy (outcomes.py
    # sums a large customer experiment's units in numpy): the unit's value from its total,
    # and the aggregates from the units' values ({v0}, {v1}... in order), as SQL gives them
    # (None where SQL's AVG or VAR_SAMP would be NULL).
    unit_value: Callable[[np.ndarray], np.ndarray] = lambda total: total
    aggregates_of: Callable[[Sequence[np.ndarray]], Aggregates] = lambda values: (int(values[0].size),)

    def section(self, result: dict) -> dict:
        """A stats result as the report's metric section: its kind right after its name."""
        return {"name": result["name"], "kind": self.name, **result}


def sql_fill(template: str, values: Sequence[tuple[str, list]]) -> tuple[str, list]:
    """A kind's SQL template with each ``{v}``/``{vN}`` replaced by that value's SQL; the
    params of every occurrence, in the order they appear."""
    sql, params = [], []
    for literal, name, _, _ in string.Formatter().parse(template):
        sql.append(literal)
        if name is not None:
            value_sql, value_params = values[0 if name == "v" else int(name[1:])]
            sql.append(value_sql)
            params += value_params
    return "".join(sql), params


# --------------------------------------------------------------------------- numpy aggregates


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _var(x: np.ndarray) -> float | None:
    """VAR_SAMP: two-pass, as stable as PostgreSQL's Youngs-Cramer."""
    if x.size < 2:
        return None
    d = x - x.mean()
    return float(d @ d) / (x.size - 1)


def _covar(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2:
        return None
    return float((x - x.mean()) @ (y - y.mean())) / (x.size - 1)


# --------------------------------------------------------------------------- binary


MAX_ABS_VALUE = 1e15  # beyond any money or count; keeps every variance finite in double precision


def finite_number(text: str) -> float:
    """A cell as a float, refusing infinities, NaN and magnitudes past MAX_ABS_VALUE."""
    number = parsing.parse_number(text)
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise parsing.ValueProblem(f"{text.strip()[:40]!r} is not a finite number within ±{MAX_ABS_VALUE:g}")
    return value


def _binary_analyze(name: str, arms: Mapping[str, ArmTotals], control: str, **options) -> dict:
    counts = {a: (int(round(aggregates[1] or 0)), int(aggregates[0] or 0)) for a, (n, aggregates) in arms.items()}
    return proportions.analyze_proportions(name, counts, control, **options)


def _binary_power(p: Power) -> dict:
    base = p.control_mean
    if base is None or not 0 < base < 1:
        raise ValueError("control rate is 0 or 1")
    achieved = planning.achieved_power_binary(base, p.effect, p.control_n, p.treatment_n, relative=p.relative,
                                              alpha=p.alpha, target=p.target)
    mde = planning.detectable_effect_binary(base, p.control_n, alpha=p.alpha, power=p.target,
                                            ratio=p.treatment_n / p.control_n)
    return {**achieved, "mde_absolute": mde["absolute"], "mde_relative": mde["relative"]}


BINARY = MetricKind(
    name="binary",
    label="0/1 outcome per unit (conversion)",
    share=True,
    unit_value_sql="CASE WHEN {v} > 0 THEN 1 WHEN {v} IS NOT NULL THEN 0 END",
    aggregates=("COUNT({v})", "SUM({v})"),
    unit_value=lambda total: (total > 0).astype(float),
    aggregates_of=lambda values: (int(values[0].size), int(values[0].sum()) if values[0].size else None),
    with_zeros=lambda aggregates, n: (n, aggregates[1] or 0),
    unit_mean=lambda aggregates: (aggregates[1] or 0) / aggregates[0],
    parse=lambda text: 1 if parsing.parse_bool(text) else 0,
    analyze=_binary_analyze,
    analyze_units=None,
    power=_binary_power,
    plan_input="baseline",
    method=("Wilson interval per arm; two-proportion z-test (Fisher's exact for small counts); "
            "unpooled Wald interval for the difference; delta-method interval for the lift"),
    sequential_method="always-valid normal-mixture mSPRT interval and p-value",
    power_method="NormalIndPower (Cohen's h)",
    value_text=formatting.percent,
    diff_text=formatting.points,
    interval_text=formatting.points_interval,
    effect_text=formatting.points,
)


# --------------------------------------------------------------------------- continuous


def _continuous_analyze(name: str, arms: Mapping[str, ArmTotals], control: str, **options) -> dict:
    moments = {a: means.Moments.from_aggregates(*aggregates[:3]) for a, (n, aggregates) in arms.items()}
    return means.analyze_means(name, moments, control, **options)


def _moments_tuple(m: means.Moments) -> Aggregates:
    return (m.n, m.mean, m.var)


def _continuous_analyze_units(name: str, values: Mapping[str, np.ndarray], control: str, *,
                              covariates: Mapping[str, np.ndarray], **options) -> dict:
    return means.analyze_means(name, values, control, covariates=covariates, **options)


def _continuous_power(p: Power) -> dict:
    base = p.control_mean
    sd = p.sd if p.sd is not None else math.sqrt(means.Moments.from_aggregates(*p.control_aggregates[:3]).var)
    if not sd > 0 or base is None:
        raise ValueError("no spread in the control arm")
    absolute = p.effect * base if p.relative else p.effect
    if absolute == 0:
        raise ValueError("control mean is zero: a relative effect is zero")
    achieved = planning.achieved_power_continuous(sd, absolute, p.control_n, p.treatment_n, alpha=p.alpha,
                                                  target=p.target)
    mde = planning.detectable_effect_continuous(sd, p.control_n, alpha=p.alpha, power=p.target,
                                                ratio=p.treatment_n / p.control_n)
    return {**achieved, "mde_absolute": mde["absolute"],
            "mde_relative": mde["absolute"] / base if base else None}


CONTINUOUS = MetricKind(
    name="continuous",
    label="a number per unit (revenue, orders)",
    share=False,
    unit_value_sql="{v}",
    aggregates=("COUNT({v})", "AVG({v})", "VAR_SAMP({v})"),
    aggregates_of=lambda values: (int(values[0].size), _mean(values[0]), _var(values[0])),
    with_zeros=lambda aggregates, n: _moments_tuple(means.Moments.from_aggregates(*aggregates[:3]).with_zeros(n)),
    parse=finite_number,
    analyze=_continuous_analyze,
    analyze_units=_continuous_analyze_units,
    power=_continuous_power,
    plan_input="sd",
    method="Welch's t-test (unequal variances); delta-method interval for the lift",
    sequential_method="always-valid normal-mixture mSPRT on Welch's statistic",
    power_method="TTestIndPower",
    value_text=formatting.number,
    diff_text=formatting.signed,
    interval_text=formatting.signed_interval,
    effect_text=lambda x: f"{formatting.signed(x)} change",
)


# --------------------------------------------------------------------------- ratio


def _ratio_analyze(name: str, arms: Mapping[str, ArmTotals], control: str, **options) -> dict:
    moments = {a: ratio.RatioMoments.from_aggregates(*aggregates[:6]) for a, (n, aggregates) in arms.items()}
    return ratio.analyze_ratios(name, moments, control, **options)


def _ratio_analyze_units(name: str, values: Mapping[str, np.ndarray], control: str, *,
                         covariates: Mapping[str, np.ndarray], **options) -> dict:
    """CUPED: per arm, an n x 2 array of numerators and denominators and one of their
    pre-period values."""
    arms = {a: ratio.RatioUnits.from_arrays(values[a][:, 0], values[a][:, 1], covariates[a][:, 0],
                                            covariates[a][:, 1]) for a in values}
    return ratio.analyze_ratios_cuped(name, arms, control, **options)


def _ratio_power(p: Power) -> dict:
    m = ratio.RatioMoments.from_aggregates(*p.control_aggregates[:6])
    sd = p.sd if p.sd is not None else m.unit_sd
    if not sd > 0:
        raise ValueError("no spread in the control arm's ratio")
    return _continuous_power(Power(**{**p.__dict__, "sd": sd, "control_mean": m.ratio}))


def _ratio_columns(name: str) -> list[str]:
    numerator, sep, denominator = name.partition("/")
    if not sep or not numerator.strip() or not denominator.strip() or "/" in denominator:
        raise ValueError(f"a ratio metric is named NUMERATOR/DENOMINATOR, not {name!r}")
    return [numerator.strip(), denominator.strip()]


# Each aggregate adds 0 times the other value so that a unit missing either one is left out
# of all six alike.
_X, _Y = "{v0} + 0 * {v1}", "{v1} + 0 * {v0}"
RATIO = MetricKind(
    name="ratio",
    label="the ratio of two per-unit sums, NUMERATOR/DENOMINATOR (revenue per order, per visit)",
    share=False,
    unit_value_sql="{v}",
    aggregates=(f"COUNT({_X})", f"AVG({_X})", f"AVG({_Y})", f"VAR_SAMP({_X})", f"VAR_SAMP({_Y})",
                "COVAR_SAMP({v0}, {v1})"),
    aggregates_of=lambda values: (int(values[0].size), _mean(values[0]), _mean(values[1]), _var(values[0]),
                                  _var(values[1]), _covar(values[0], values[1])),
    with_zeros=lambda aggregates, n: ratio.RatioMoments.from_aggregates(*aggregates[:6]).with_zeros(n).as_tuple(),
    unit_mean=lambda aggregates: ratio.RatioMoments.from_aggregates(*aggregates[:6]).ratio,
    parse=finite_number,
    analyze=_ratio_analyze,
    analyze_units=_ratio_analyze_units,
    power=_ratio_power,
    plan_input="sd",
    method=("delta-method variance of the ratio of means over units; z-test of the difference; "
            "delta-method interval for the lift"),
    sequential_method="always-valid normal-mixture mSPRT on the delta-method statistic",
    power_method="TTestIndPower on the delta-method (linearised) standard deviation",
    value_text=formatting.number,
    diff_text=formatting.signed,
    interval_text=formatting.signed_interval,
    effect_text=lambda x: f"{formatting.signed(x)} change",
    columns=_ratio_columns,
)


# --------------------------------------------------------------------------- quantiles


def _no_power(p: Power) -> dict:
    raise ValueError("no power calculation for a quantile metric")


def _quantile_kind(name: str, q: float, label: str) -> MetricKind:
    def analyze_units(metric: str, values: Mapping[str, np.ndarray], control: str, **options) -> dict:
        options.pop("covariates", None)
        return quantile.analyze_quantiles(metric, values, control, q=q, **options)

    def analyze(metric: str, arms: Mapping[str, ArmTotals], control: str, **options) -> dict:
        raise ValueError(f"a {name} metric needs per-unit values")

    return MetricKind(
        name=name, label=label, share=False, unit_value_sql="{v}", aggregates=("COUNT({v})",),
        unit_mean=lambda aggregates: None, units_only=True, parse=finite_number,
        analyze=analyze, analyze_units=analyze_units, power=_no_power, plan_input="sd",
        method=(f"sample {label} per arm with a distribution-free order-statistic interval (Price-Bonett); "
                "normal test on the difference; delta-method interval for the lift"),
        sequential_method=f"always-valid normal-mixture mSPRT on the {label} difference",
        power_method="not computed for quantile metrics",
        value_text=formatting.number, diff_text=formatting.signed, interval_text=formatting.signed_interval,
        effect_text=lambda x: f"{formatting.signed(x)} change",
        columns=lambda metric: [_quantile_column(name, metric)],
    )


def _quantile_column(kind: str, metric: str) -> str:
    """'median(spend)' reads column spend: the name keeps spend itself free for its mean."""
    if metric.startswith(f"{kind}(") and metric.endswith(")") and len(metric) > len(kind) + 2:
        return metric[len(kind) + 1:-1]
    raise ValueError(f"a {kind} metric is named {kind}(COLUMN), not {metric!r}")


def quantile_metric_name(kind: str, column: str) -> str:
    return f"{kind}({column})"


MEDIAN = _quantile_kind("median", 0.5, "median")
P90 = _quantile_kind("p90", 0.9, "90th percentile")


# --------------------------------------------------------------------------- the table


KINDS: dict[str, MetricKind] = {k.name: k for k in (BINARY, CONTINUOUS, RATIO, MEDIAN, P90)}
KIND_CHOICES = [(name, name) for name in KINDS]  # for the API's enum


def kind_get(name: str) -> MetricKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown metric kind {name!r}: one of {', '.join(KINDS)}") from None
