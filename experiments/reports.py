"""Build an experiment's report: SQL aggregates (outcomes.py) into the pure analysis.

Reads only; services.report_refresh stores the result. What is fetched per unit, and why:
nothing for the core report (sums per arm), per-unit values for CUPED only when a
covariate is configured, and survival data grouped by hour for the retention section.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import pandas as pd
from django.utils import timezone

from core.db import alongside

from . import analysis, outcomes, survival, timeline, unitarrays
from .breakdowns import segment_by
from .kinds import RATIO, kind_get
from .stats.bayes import GaussianPrior
from .retention import retention_section
from .models import Arm, Experiment, Metric

DEFAULT_RETENTION_DAYS = (7, 14, 30)
CUMULATIVE_DAYS = 30  # the over-time curve's horizon, in days since exposure
PRE_PERIOD = "pre_period"


def metric_description(experiment: Experiment, metric: Metric) -> str:
    window = f"within {experiment.attribution_days} days after exposure"
    where = ""
    if metric.order_filter:
        where = " (orders with " + ", ".join(f"{k} = {v}" for k, v in sorted(metric.order_filter.items())) + ")"
    return {
        Metric.Source.ORDER_CONVERSION: f"share of units with an order {window}{where}",
        Metric.Source.ORDER_REVENUE: f"order amounts per unit {window}{where}",
        Metric.Source.ORDER_COUNT: f"orders per unit {window}{where}",
        Metric.Source.EVENT_CONVERSION: f"share of units with a '{metric.event_kind}' event {window}",
        Metric.Source.EVENT_COUNT: f"'{metric.event_kind}' events per unit {window}",
        Metric.Source.IMPORTED: f"column '{metric.name}' of the imported file",
    }[metric.source]


def design_for(experiment: Experiment, arms: list[Arm], metrics: list[Metric]) -> analysis.Design:
    return analysis.Design(
        name=experiment.name,
        id=experiment.id,
        arms=[analysis.ArmSpec(a.name, a.weight, a.is_control) for a in arms],
        metrics=[analysis.MetricSpec(m.name, m.kind, m.is_primary, metric_description(experiment, m))
                 for m in metrics],
        mode=experiment.mode,
        alpha=experiment.alpha,
        sequential_tuning_n=experiment.sequential_tuning_n,
        mde=experiment.mde,
        mde_relative=experiment.mde_relative,
        source=experiment.source,
        unit_label=experiment.unit_label,
        attribution_days=experiment.attribution_days if experiment.source == Experiment.Source.CUSTOMERS else None,
        prior=_prior(experiment),
    )


def _prior(experiment: Experiment) -> GaussianPrior:
    try:
        return GaussianPrior.from_dict(experiment.prior)
    except (TypeError, ValueError):
        return GaussianPrior()  # a hand-edited bad prior reads as the default, not a 500


def report_build(experiment: Experiment, *, by: str | None = None, now: datetime | None = None) -> dict:
    """The whole analysis of one experiment as a JSON-ready dict."""
    started = time.monotonic()
    now = now or timezone.now()
    arms = list(experiment.arms.order_by("position", "id"))
    metrics = list(experiment.metrics.order_by("position", "id"))
    design = design_for(experiment, arms, metrics)
    names = {a.id: a.name for a in arms}
    sections_later, exposed, span = None, None, (None, None)
    if experiment.source == Experiment.Source.CUSTOMERS:
        # The span once for the whole report; the exposures are read (on a connection of their
        # own) only by the first part that asks, and shared with the rest.
        span = outcomes.exposure_span(experiment)
        exposed = unitarrays.ExposedRead(experiment, span)
    if exposed is not None and experiment.retention_event:
        # Independent of the metrics: read and computed on a second connection meanwhile
        # (core.db.alongside), the numpy work too while this thread waits on the metrics' SQL.
        sections_later = alongside(lambda: _survival_sections(experiment, design, names, now, exposed))

    sums = outcomes.arm_sums(experiment, metrics, exposed=exposed)
    arm_data = {names[arm_id]: analysis.ArmData(s.n, s.metrics) for (_, arm_id), s in sums.items()}
    notes: list[str] = []
    cuped = _cuped(experiment, metrics, names, notes) if experiment.covariate else None
    open_windows = outcomes.open_windows(experiment, now, span, units=sum(s.n for s in sums.values()))
    ready_at = outcomes.windows_close_at(experiment, span) if open_windows else None
    body = analysis.analyze(design, arm_data, cuped=cuped, unit_values=_unit_values(experiment, metrics, names),
                            open_windows=open_windows, notes=notes,
                            ready_at=ready_at.isoformat() if ready_at else None)
    if by:
        groups: dict[str, dict[str, analysis.ArmData]] = {}
        for (grp, arm_id), s in outcomes.arm_sums(experiment, metrics, by=by).items():
            groups.setdefault(grp, {})[names[arm_id]] = analysis.ArmData(s.n, s.metrics)
        body["breakdown"] = analysis.breakdown(design, by, groups)
        segment = segment_by(experiment, by)
        if segment is not None:
            body["breakdown"]["segment"] = segment.describe()
            body["breakdown"]["caveat"] += f" Units are grouped by {segment.describe()['text']}."
    if sections_later is not None and body["units"]:
        body.update(sections_later())
    body["computed_at"] = now.isoformat()
    body["seconds"] = round(time.monotonic() - started, 3)
    return body


def _survival_sections(experiment: Experiment, design: analysis.Design, names: dict[int, str],
                       now: datetime, exposed: unitarrays.ExposedRead | None = None) -> dict:
    """The retention section and the over-time curve, from one read of the survival data."""
    days = [int(d) for d in (experiment.retention_days or DEFAULT_RETENTION_DAYS)]
    data = survival.survival_data(experiment, now, max_day=max(days), exposed=exposed)
    sections = {"retention": _retention(design, names, data, days, experiment.retention_event)}
    if max(days) != CUMULATIVE_DAYS:  # the curve's days observed are capped at its own horizon
        data = data.capped(CUMULATIVE_DAYS)
    cumulative = _cumulative(experiment, design, names, data)
    if cumulative is not None:
        sections["cumulative"] = cumulative
    return sections


def _unit_values(experiment: Experiment, metrics: list[Metric], names: dict[int, str]) -> dict | None:
    """Every unit's value, by arm, for the metrics whose kind needs them (quantiles)."""
    chosen = [m for m in metrics if kind_get(m.kind).units_only]
    if not chosen:
        return None
    frame = outcomes.unit_values(experiment, chosen)
    arm_of = frame["arm_id"].map(names)
    return {m.name: {a: frame.loc[(arm_of == a) & frame[m.name].notna(), m.name].to_numpy(float)
                     for a in names.values()} for m in chosen}


def _cuped(experiment: Experiment, metrics: list[Metric], names: dict[int, str], notes: list[str]):
    """Per-unit values and covariates for every metric whose kind supports CUPED, by arm:
    continuous metrics one column each, ratio metrics two (numerator and denominator, after
    exposure and before it)."""
    chosen = [m for m in metrics if kind_get(m.kind).analyze_units is not None and not kind_get(m.kind).units_only]
    if not chosen:
        return None
    after = outcomes.unit_values(experiment, chosen)
    covariates: dict[str, pd.DataFrame] = {}
    if experiment.source == Experiment.Source.CUSTOMERS:
        if experiment.covariate != PRE_PERIOD:
            notes.append(f"covariate {experiment.covariate!r} ignored: customer experiments use 'pre_period'")
            return None
        before = outcomes.unit_values(experiment, chosen, window=(-outcomes.window_days(experiment), 0))
        for m in chosen:
            covariates[m.name] = before[_columns(m)]
        label = f"the same metric in the {experiment.attribution_days} days before exposure"
    else:
        # A plain column adjusts continuous metrics; PRE_NUMERATOR/PRE_DENOMINATOR, ratio metrics.
        ratio_covariate = "/" in experiment.covariate
        columns = [c.strip() for c in experiment.covariate.split("/")]
        values = pd.concat([outcomes.unit_covariate(experiment, c).rename(c) for c in columns], axis=1)
        if values.isna().any().any():
            missing = int(values.isna().any(axis=1).sum())
            notes.append(f"CUPED skipped: covariate '{experiment.covariate}' is missing for {missing:,} units")
            return None
        chosen = [m for m in chosen if (kind_get(m.kind) is RATIO) == ratio_covariate]
        covariates = {m.name: values for m in chosen}
        label = experiment.covariate
    arm_of = after["arm_id"].map(names)
    result = {}
    for metric in chosen:
        y = after[_columns(metric)]
        x = covariates[metric.name].reindex(after.index)
        known = y.notna().all(axis=1)  # a missing outcome is left out of this metric only
        result[metric.name] = analysis.Cuped(
            values={a: _squeeze(y[known & (arm_of == a)]) for a in names.values()},
            covariates={a: _squeeze(x[known & (arm_of == a)]) for a in names.values()},
            covariate=label,
        )
    return result


def _columns(metric: Metric) -> list[str]:
    return [outcomes.value_column(metric, k) for k in range(2 if kind_get(metric.kind) is RATIO else 1)]


def _squeeze(frame: pd.DataFrame) -> np.ndarray:
    """One column as a vector (continuous), two as an n x 2 array (ratio)."""
    values = frame.to_numpy(float)
    return values[:, 0] if values.shape[1] == 1 else values


def _arm_positions(design: analysis.Design, names: dict[int, str], data: survival.SurvivalData) -> np.ndarray:
    """Arm ids to positions in design.arms, vectorised: a million units in milliseconds."""
    ids = np.array(sorted(names))
    position = {a.name: i for i, a in enumerate(design.arms)}
    positions = np.array([position[names[i]] for i in ids], dtype=np.int64)
    return positions[np.searchsorted(ids, data.arm_ids)] if data.arm_ids.size else data.arm_ids


def _retention(design: analysis.Design, names: dict[int, str], data: survival.SurvivalData, days: list[int],
               event: str) -> dict:
    return retention_section(
        design, _arm_positions(design, names, data), data.durations, data.events, data.observed_days, days=days,
        event=event, weights=data.counts,
    )


def _cumulative(experiment: Experiment, design: analysis.Design, names: dict[int, str],
                data: survival.SurvivalData) -> dict | None:
    """The report's over-time curve: each treatment arm's difference from the control in the
    share of units who came back (ordered) within d days, d = 1..CUMULATIVE_DAYS, with its
    interval. Computed here, with the report, on the worker: read per unit in the page it
    took 33 s at 800,000 units, so large experiments used to show no curve at all."""
    if data.durations.size == 0:
        return None
    control = next(i for i, a in enumerate(design.arms) if a.control)
    days = list(range(1, min(CUMULATIVE_DAYS, int(data.observed_days.max(initial=0))) + 1))
    # Arm positions, not names: comparing integers over a million units is what keeps it fast.
    series = timeline.cumulative_difference(
        _arm_positions(design, names, data), data.durations, data.events, data.observed_days,
        control=control, days=days, alpha=experiment.alpha, weights=data.counts,
    )
    series = [{**s, "arm": design.arms[s["arm"]].name, **{k: [_finite(v) for v in s[k]] for k in ("diff", "lo", "hi")}}
              for s in series if s["day"]]
    if not series:
        return None
    return {"control": design.arms[control].name, "days": CUMULATIVE_DAYS, "event": experiment.retention_event,
            "series": series}


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
