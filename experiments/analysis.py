"""The experiment report: sums per arm in, the whole analysis out. No Django here.

The services gather the numbers (outcomes.py, in SQL) and hand them over as plain data;
this module decides what to compute (experiments/kinds.py names each metric kind's
statistics) and writes the verdict a marketer reads. Keeping it pure means the same report can be checked from hand-made sums.

Order of business, as DESIGN.md asks: sample ratio mismatch first (a failed check makes
every other number untrustworthy, and the verdict opens with that), then each metric
(Holm over the primary metric's comparisons), then power for the primary metric, then the
verdict. Breakdowns and retention (retention.py) are optional sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .kinds import KINDS, Power, kind_get
from .stats.bayes import GaussianPrior
from .stats.multiple import adjust_pvalues
from .stats.sequential import DEFAULT_SEQUENTIAL_TUNING_N
from .stats.srm import srm_check
from .verdicts import bayes_verdict_text, effect_of_interest, effect_text, srm_message, verdict_text

TARGET_POWER = 0.8
MAX_SEGMENTS = 50


@dataclass(frozen=True)
class ArmSpec:
    name: str
    weight: float
    control: bool


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # a name in experiments.kinds.KINDS
    primary: bool
    description: str = ""


@dataclass(frozen=True)
class Design:
    name: str
    arms: Sequence[ArmSpec]
    metrics: Sequence[MetricSpec]
    mode: str = "fixed"
    alpha: float = 0.05
    sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N
    mde: float | None = None
    mde_relative: bool = True
    id: int | None = None
    source: str = ""
    unit_label: str = ""
    attribution_days: int | None = None
    prior: GaussianPrior = GaussianPrior()

    @property
    def control(self) -> str:
        return next(a.name for a in self.arms if a.control)

    @property
    def sequential(self) -> bool:
        return self.mode == "sequential"


@dataclass
class ArmData:
    """Units in an arm and, per metric, the aggregates of per-unit values its kind names
    (experiments.kinds: sum and sum of squares for binary and continuous)."""

    n: int = 0
    sums: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass
class Cuped:
    """Per-unit values and pre-treatment covariate for one continuous metric, by arm."""

    values: Mapping[str, np.ndarray]
    covariates: Mapping[str, np.ndarray]
    covariate: str


# --------------------------------------------------------------------------- metrics


def _aggregates(arm: ArmData, metric: MetricSpec) -> tuple[float, ...]:
    return arm.sums.get(metric.name) or (0.0,) * len(kind_get(metric.kind).aggregates)


def _metric(design: Design, metric: MetricSpec, arms: Mapping[str, ArmData], cuped: Cuped | None,
            units: Mapping[str, np.ndarray] | None = None) -> dict:
    control = design.control
    kind = kind_get(metric.kind)
    counted = {a: int(_aggregates(d, metric)[0] or 0) for a, d in arms.items()}
    present = [a.name for a in design.arms if counted.get(a.name, 0) > 0]
    common = dict(primary=metric.primary, alpha=design.alpha, sequential=design.sequential,
                  sequential_tuning_n=design.sequential_tuning_n, prior=design.prior)
    if control not in present or len(present) < 2:
        rows = [{"arm": a, "n": counted.get(a, 0), "mean": None, "ci": [None, None]}
                for a in (x.name for x in design.arms)]
        result = {"name": metric.name, "kind": metric.kind, "primary": metric.primary, "arms": rows,
                  "comparisons": [], "note": "no comparison: the control or every other arm has no units"}
        _missing(result, arms, counted)
        return result
    if kind.units_only:
        if units is None:
            rows = [{"arm": a, "n": counted.get(a, 0), "mean": None, "ci": [None, None]} for a in present]
            result = {"name": metric.name, "kind": metric.kind, "primary": metric.primary, "arms": rows,
                      "comparisons": [], "note": f"a {kind.label} needs every unit's value: not in breakdowns"}
        else:
            result = kind.section(kind.analyze_units(metric.name, {a: units[a] for a in present}, control, **common))
    elif cuped is not None and kind.analyze_units is not None:
        result = kind.section(kind.analyze_units(
            metric.name, {a: cuped.values[a] for a in present}, control,
            covariates={a: cuped.covariates[a] for a in present}, **common))
        result["cuped"]["covariate"] = cuped.covariate
    else:
        totals = {a: (arms[a].n, _aggregates(arms[a], metric)) for a in present}
        result = kind.section(kind.analyze(metric.name, totals, control, **common))
    if metric.description:
        result["description"] = metric.description
    _missing(result, arms, counted)
    return result


def _missing(result: dict, arms: Mapping[str, ArmData], counted: Mapping[str, int]) -> None:
    """Units of each arm with no value for this metric: left out of it, still in every other
    metric and in the sample-ratio check."""
    missing = {a: max(0, d.n - counted.get(a, 0)) for a, d in arms.items()}
    for row in result["arms"]:
        row["missing"] = missing.get(row["arm"], 0)
    result["missing"] = int(sum(missing.values()))


# --------------------------------------------------------------------------- power


def power_section(design: Design, primary: dict, arms: Mapping[str, ArmData]) -> dict:
    """Power the observed sizes had for the effect of interest, and the smallest effect they
    could detect (at 80% power, two-sided alpha; unadjusted for Holm, so a floor)."""
    effect, relative, source = effect_of_interest(design)
    control = design.control
    kind = kind_get(primary["kind"])
    spec = next(m for m in design.metrics if m.name == primary["name"])
    section = {
        "metric": primary["name"], "kind": primary["kind"], "target_power": TARGET_POWER,
        "alpha": design.alpha,
        "effect_of_interest": {"value": effect, "relative": relative, "source": source,
                               "text": effect_text(primary["kind"], effect, relative)},
        "comparisons": [], "underpowered": False,
        "method": kind.power_method,
    }
    if design.sequential:
        section["note"] = ("fixed-horizon power: the sequential test pays for safe peeking with "
                           "somewhat less power at the same size")
    rows = {r["arm"]: r for r in primary["arms"]}
    adjusted_sd = (primary.get("cuped") or {}).get("control_sd")
    if adjusted_sd is not None:
        section["sd"] = {"value": adjusted_sd, "source": "cuped_adjusted",
                         "text": "power uses the CUPED-adjusted standard deviation of the control arm"}
    for comp in primary["comparisons"]:
        arm = comp["arm"]
        n_c, n_t = arms[control].n, arms[arm].n
        row = {"arm": arm, "control": control, "n_control": n_c, "n_treatment": n_t,
               "power": None, "underpowered": None, "mde_absolute": None, "mde_relative": None}
        try:
            achieved = kind.power(Power(
                control_mean=rows[control]["mean"], control_n=n_c, control_aggregates=_aggregates(arms[control], spec),
                treatment_n=n_t, effect=effect, relative=relative, alpha=design.alpha, target=TARGET_POWER,
                sd=adjusted_sd))
            row.update(mde_absolute=achieved["mde_absolute"], mde_relative=achieved["mde_relative"],
                       power=achieved["power"], underpowered=achieved["underpowered"])
        except (ValueError, ZeroDivisionError) as exc:
            row["note"] = f"power not computed: {exc}"
        section["comparisons"].append(row)
    section["underpowered"] = any(r["underpowered"] for r in section["comparisons"])
    return section


# --------------------------------------------------------------------------- report


def analyze(
    design: Design,
    arms: Mapping[str, ArmData],
    *,
    cuped: Mapping[str, Cuped] | None = None,
    unit_values: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    open_windows: int = 0,
    notes: Sequence[str] = (),
    ready_at: str | None = None,
) -> dict:
    """The report body (see the experiments issue for the schema)."""
    if sum(1 for a in design.arms if a.control) != 1:
        raise ValueError("an experiment needs exactly one control arm")
    cuped = cuped or {}
    sizes = [arms.get(a.name, ArmData()).n for a in design.arms]
    srm = srm_check(sizes, [a.weight for a in design.arms])
    srm["message"] = srm_message(srm)
    report: dict = {
        "experiment": design.name,
        "id": design.id,
        "source": design.source,
        "unit": design.unit_label,
        "units": int(sum(sizes)),
        "mode": design.mode,
        "alpha": design.alpha,
        "srm": srm,
        "arms": [{"name": a.name, "control": a.control, "n": n, "weight": a.weight}
                 for a, n in zip(design.arms, sizes)],
        "metrics": [_metric(design, m, arms, cuped.get(m.name), (unit_values or {}).get(m.name))
                    for m in design.metrics],
    }
    if design.attribution_days is not None:
        report["attribution_days"] = design.attribution_days
    report["open_windows"] = int(open_windows)
    if ready_at is not None:  # when the last attribution window closes: "too early" until then
        report["ready_at"] = ready_at
    primary = next((m for m in report["metrics"] if m["primary"]), None)
    report["power"] = power_section(design, primary, arms) if primary else {}
    report["methods"] = _methods(design)
    report["notes"] = list(notes)
    missing = [m for m in report["metrics"] if m.get("missing")]
    if missing:
        report["notes"].append("missing outcomes, left out of that metric only: " + "; ".join(
            f"{m['name']}: " + ", ".join(f"{r['arm']} {r['missing']:,}" for r in m["arms"]) for m in missing))
    report["engine"] = "frequentist"
    report["verdict"] = verdict_text(design, report) + " (Frequentist engine.)"
    report["verdicts"] = {"frequentist": report["verdict"], "bayesian": bayes_verdict_text(design, report)}
    report["prior"] = {"mean": design.prior.mean, "variance": design.prior.variance, "proper": design.prior.proper,
                       "text": design.prior.describe()}
    return report


def _methods(design: Design) -> dict:
    seq = design.sequential
    return {
        "srm": "Pearson chi-square of arm sizes against planned weights; fail below p = 0.001, warn below 0.01",
        **{k.name: k.sequential_method if seq else k.method for k in KINDS.values()},
        "multiple_comparisons": "Holm over the primary metric's comparisons; secondary metrics unadjusted",
        "mode": ("sequential: p-values and intervals stay valid however often the report is read"
                 if seq else "fixed horizon: read once, at the planned sample size"),
    }


# --------------------------------------------------------------------------- breakdown


def breakdown(design: Design, by: str, groups: Mapping[str, Mapping[str, ArmData]]) -> dict:
    """The analysis within each value of a unit attribute, with the caveat it needs."""
    if len(groups) > MAX_SEGMENTS:
        raise ValueError(
            f"'{by}' has {len(groups):,} distinct values; breakdowns need a categorical attribute "
            f"with at most {MAX_SEGMENTS} values")
    segments = []
    for value in sorted(groups, key=lambda v: (-sum(d.n for d in groups[v].values()), v)):
        arms = groups[value]
        sizes = [arms.get(a.name, ArmData()).n for a in design.arms]
        segments.append({
            "value": value,
            "units": int(sum(sizes)),
            "arms": [{"name": a.name, "control": a.control, "n": n} for a, n in zip(design.arms, sizes)],
            "metrics": [_metric(design, m, arms, None) for m in design.metrics],
        })
    # Holm across every segment's primary comparisons: the family a reader actually scans.
    family = [(s, c) for s in segments for m in s["metrics"] if m["primary"] for c in m["comparisons"]]
    adjusted = adjust_pvalues([c["p_value"] for _, c in family])
    for (_, comp), p in zip(family, adjusted):
        comp["p_adjusted_across_segments"] = p
    n_tests = len(family)
    expected = design.alpha * n_tests
    caveat = (
        f"{len(segments)} segments of '{by}' give {n_tests} comparisons of the primary metric: even "
        f"if nothing differed, about {expected:.1f} would reach p < {design.alpha:g} by chance. "
        "Segment results are exploratory: look for a pattern worth a follow-up test, not a winner. "
        "p_adjusted_across_segments applies Holm over all segments' primary comparisons; the "
        "per-segment p_adjusted only within a segment. Segments should be defined by attributes "
        "fixed before exposure, or the treatment itself can move units between them."
    )
    return {"by": by, "segments": segments, "comparisons": n_tests, "caveat": caveat}
