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

from .stats import means, planning, proportions

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


# --------------------------------------------------------------------------- binary


def _binary_analyze(name: str, arms: Mapping[str, ArmTotals], control: str, **options) -> dict:
    counts = {a: (int(round(aggregates[0])), n) for a, (n, aggregates) in arms.items()}
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
    unit_value_sql="CASE WHEN {v} > 0 THEN 1 ELSE 0 END",
    aggregates=("SUM({v})", "SUM({v} * {v})"),
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
    moments = {a: means.Moments.from_sums(n, *aggregates[:2]) for a, (n, aggregates) in arms.items()}
    return means.analyze_means(name, moments, control, **options)


def _continuous_analyze_units(name: str, values: Mapping[str, np.ndarray], control: str, *,
                              covariates: Mapping[str, np.ndarray], **options) -> dict:
    return means.analyze_means(name, values, control, covariates=covariates, **options)


def _continuous_power(p: Power) -> dict:
    base = p.control_mean
    sd = math.sqrt(means.Moments.from_sums(p.control_n, *p.control_aggregates[:2]).var)
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
    aggregates=("SUM({v})", "SUM({v} * {v})"),
    parse=lambda text: float(parsing.parse_number(text)),
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


# --------------------------------------------------------------------------- the table


KINDS: dict[str, MetricKind] = {k.name: k for k in (BINARY, CONTINUOUS)}
KIND_CHOICES = [(name, name) for name in KINDS]  # for the API's enum


def kind_get(name: str) -> MetricKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown metric kind {name!r}: one of {', '.join(KINDS)}") from None
