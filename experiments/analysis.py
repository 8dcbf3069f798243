"""The experiment report: sums per arm in, the whole analysis out. No Django here.

The services gather the numbers (outcomes.py, in SQL) and hand them over as plain data;
this module decides what to compute with experiments/stats.py and writes the verdict a
marketer reads. Keeping it pure means the same report can be checked from hand-made sums.

Order of business, as DESIGN.md asks: sample ratio mismatch first (a failed check makes
every other number untrustworthy, and the verdict opens with that), then each metric
(Holm over the primary metric's comparisons), then power for the primary metric, then the
verdict. Breakdowns and retention are optional sections.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from . import stats

TARGET_POWER = 0.8
DEFAULT_RELATIVE_MDE = 0.10  # the effect worth detecting when the experiment names none
MAX_SEGMENTS = 50


@dataclass(frozen=True)
class ArmSpec:
    name: str
    weight: float
    control: bool


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # binary | continuous
    primary: bool
    description: str = ""


@dataclass(frozen=True)
class Design:
    name: str
    arms: Sequence[ArmSpec]
    metrics: Sequence[MetricSpec]
    mode: str = "fixed"
    alpha: float = 0.05
    sequential_tuning_n: int = stats.DEFAULT_SEQUENTIAL_TUNING_N
    mde: float | None = None
    mde_relative: bool = True
    id: int | None = None
    source: str = ""
    unit_label: str = ""
    attribution_days: int | None = None

    @property
    def control(self) -> str:
        return next(a.name for a in self.arms if a.control)

    @property
    def sequential(self) -> bool:
        return self.mode == "sequential"


@dataclass
class ArmData:
    """Units in an arm and, per metric, (sum, sum of squares) of per-unit values."""

    n: int = 0
    sums: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Cuped:
    """Per-unit values and pre-treatment covariate for one continuous metric, by arm."""

    values: Mapping[str, np.ndarray]
    covariates: Mapping[str, np.ndarray]
    covariate: str


# --------------------------------------------------------------------------- formatting


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def points(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f} points"


def num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.3g}"


def signed(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:+,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:+.3g}"


def value_text(kind: str, x: float | None) -> str:
    return pct(x) if kind == "binary" else num(x)


def diff_text(kind: str, x: float | None) -> str:
    return points(x) if kind == "binary" else signed(x)


def interval_text(kind: str, ci: Sequence[float | None]) -> str:
    lo, hi = ci
    if lo is None or hi is None:
        return "n/a"
    if kind == "binary":
        return f"{lo * 100:+.2f} to {hi * 100:+.2f} points"
    return f"{signed(lo)} to {signed(hi)}"


# --------------------------------------------------------------------------- metrics


def _metric(design: Design, metric: MetricSpec, arms: Mapping[str, ArmData], cuped: Cuped | None) -> dict:
    control = design.control
    present = [a.name for a in design.arms if arms.get(a.name, ArmData()).n > 0]
    common = dict(primary=metric.primary, alpha=design.alpha, sequential=design.sequential,
                  sequential_tuning_n=design.sequential_tuning_n)
    if control not in present or len(present) < 2:
        rows = [{"arm": a, "n": arms[a].n if a in arms else 0, "mean": None, "ci": [None, None]}
                for a in (x.name for x in design.arms)]
        return {"name": metric.name, "kind": metric.kind, "primary": metric.primary, "arms": rows,
                "comparisons": [], "note": "no comparison: the control or every other arm has no units"}
    if metric.kind == "binary":
        counts = {}
        for a in present:
            total, _ = arms[a].sums.get(metric.name, (0.0, 0.0))
            counts[a] = (int(round(total)), arms[a].n)
        result = stats.analyze_binary(metric.name, counts, control, **common)
    elif cuped is not None:
        result = stats.analyze_continuous(
            metric.name, {a: cuped.values[a] for a in present}, control,
            covariates={a: cuped.covariates[a] for a in present}, **common)
        result["cuped"]["covariate"] = cuped.covariate
    else:
        moments = {}
        for a in present:
            total, total_sq = arms[a].sums.get(metric.name, (0.0, 0.0))
            moments[a] = stats.Moments.from_sums(arms[a].n, total, total_sq)
        result = stats.analyze_continuous(metric.name, moments, control, **common)
    if metric.description:
        result["description"] = metric.description
    return result


# --------------------------------------------------------------------------- power


def _effect_of_interest(design: Design) -> tuple[float, bool, str]:
    if design.mde is not None:
        return design.mde, design.mde_relative, "planned"
    return DEFAULT_RELATIVE_MDE, True, "default"


def _effect_text(kind: str, effect: float, relative: bool) -> str:
    if relative:
        return f"{effect * 100:+.0f}% relative change"
    return points(effect) if kind == "binary" else f"{signed(effect)} change"


def power_section(design: Design, primary: dict, arms: Mapping[str, ArmData]) -> dict:
    """Power the observed sizes had for the effect of interest, and the smallest effect they
    could detect (at 80% power, two-sided alpha; unadjusted for Holm, so a floor)."""
    effect, relative, source = _effect_of_interest(design)
    control = design.control
    section = {
        "metric": primary["name"], "kind": primary["kind"], "target_power": TARGET_POWER,
        "alpha": design.alpha,
        "effect_of_interest": {"value": effect, "relative": relative, "source": source,
                               "text": _effect_text(primary["kind"], effect, relative)},
        "comparisons": [], "underpowered": False,
        "method": "NormalIndPower (Cohen's h)" if primary["kind"] == "binary" else "TTestIndPower",
    }
    if design.sequential:
        section["note"] = ("fixed-horizon power: the sequential test pays for safe peeking with "
                           "somewhat less power at the same size")
    rows = {r["arm"]: r for r in primary["arms"]}
    for comp in primary["comparisons"]:
        arm = comp["arm"]
        n_c, n_t = arms[control].n, arms[arm].n
        row = {"arm": arm, "control": control, "n_control": n_c, "n_treatment": n_t,
               "power": None, "underpowered": None, "mde_absolute": None, "mde_relative": None}
        base = rows[control]["mean"]
        try:
            if primary["kind"] == "binary":
                if base is None or not 0 < base < 1:
                    raise ValueError("control rate is 0 or 1")
                achieved = stats.achieved_power_binary(base, effect, n_c, n_t, relative=relative,
                                                       alpha=design.alpha, target=TARGET_POWER)
                mde = stats.detectable_effect_binary(base, n_c, alpha=design.alpha, power=TARGET_POWER,
                                                     ratio=n_t / n_c)
                row.update(mde_absolute=mde["absolute"], mde_relative=mde["relative"])
            else:
                total, total_sq = arms[control].sums.get(primary["name"], (0.0, 0.0))
                sd = math.sqrt(stats.Moments.from_sums(n_c, total, total_sq).var)
                if not sd > 0 or base is None:
                    raise ValueError("no spread in the control arm")
                absolute = effect * base if relative else effect
                if absolute == 0:
                    raise ValueError("control mean is zero: a relative effect is zero")
                achieved = stats.achieved_power_continuous(sd, absolute, n_c, n_t, alpha=design.alpha,
                                                           target=TARGET_POWER)
                mde = stats.detectable_effect_continuous(sd, n_c, alpha=design.alpha, power=TARGET_POWER,
                                                         ratio=n_t / n_c)
                row.update(mde_absolute=mde["absolute"],
                           mde_relative=mde["absolute"] / base if base else None)
            row.update(power=achieved["power"], underpowered=achieved["underpowered"])
        except (ValueError, ZeroDivisionError) as exc:
            row["note"] = f"power not computed: {exc}"
        section["comparisons"].append(row)
    section["underpowered"] = any(r["underpowered"] for r in section["comparisons"])
    return section


# --------------------------------------------------------------------------- verdict


def _srm_message(srm: dict) -> str:
    p = stats.format_p_value(srm["p_value"])
    if srm["status"] == "fail":
        return (f"SAMPLE RATIO MISMATCH (p = {p}): the arm sizes do not match the planned split, so "
                "assignment or exposure logging is broken and these results are not trustworthy.")
    if srm["status"] == "warning":
        return (f"Possible sample ratio mismatch (p = {p}): arm sizes deviate from the plan more than "
                "chance usually allows; check assignment before relying on the results.")
    return "Arm sizes match the planned split." if p else "No units yet."


def _comparison_sentence(design: Design, metric: dict, comp: dict, power_row: dict | None,
                         n_comparisons: int) -> str:
    kind, name = metric["kind"], metric["name"]
    means = {r["arm"]: r["mean"] for r in metric["arms"]}
    c, t = means.get(comp["control"]), means.get(comp["arm"])
    ci_name = f"{(1 - design.alpha) * 100:g}% {'always-valid ' if design.sequential else ''}CI"
    detail = f"{diff_text(kind, comp['diff'])}, {ci_name} {interval_text(kind, comp['diff_ci'])}"
    if comp["significant"]:
        verb = "raised" if (comp["diff"] or 0) > 0 else "lowered"
        if design.sequential:
            how = "significant under the sequential test"
        elif n_comparisons > 1:
            how = "significant after Holm correction"
        else:
            how = f"significant (p = {stats.format_p_value(comp['p_value'])})"
        return (f"{comp['arm']} {verb} {name} from {value_text(kind, c)} to {value_text(kind, t)} "
                f"({detail}); {how}.")
    if power_row and power_row.get("underpowered"):
        effect = _effect_text(kind, *_effect_of_interest(design)[:2])
        smallest = power_row.get("mde_absolute")
        smallest_text = f"; at this size only changes of about {diff_text(kind, smallest)} are detectable" \
            if smallest is not None else ""
        return (f"{comp['arm']} vs {comp['control']}: not enough data: underpowered to detect a {effect} "
                f"in {name} (power {power_row['power'] * 100:.0f}%{smallest_text}). So far "
                f"{value_text(kind, t)} vs {value_text(kind, c)} ({detail}), not significant.")
    power_text = ""
    if power_row and power_row.get("power") is not None:
        effect = _effect_text(kind, *_effect_of_interest(design)[:2])
        power_text = f"; the test had {power_row['power'] * 100:.0f}% power to detect a {effect}"
    return (f"{comp['arm']} made no significant difference to {name}: {value_text(kind, t)} vs "
            f"{value_text(kind, c)} ({detail}){power_text}.")


def verdict_text(design: Design, report: dict) -> str:
    parts = []
    srm = report["srm"]
    if srm["status"] == "fail":
        parts.append("Results are not trustworthy: " + _srm_message(srm))
    elif srm["status"] == "warning":
        parts.append(_srm_message(srm))
    if report["units"] == 0:
        return " ".join(parts + ["No data yet: no units have been exposed."])
    primary = next((m for m in report["metrics"] if m["primary"]), None)
    if primary is None or not primary["comparisons"]:
        return " ".join(parts + ["No comparison possible yet: an arm has no units."])
    power_rows = {r["arm"]: r for r in report["power"].get("comparisons", [])}
    for comp in primary["comparisons"]:
        parts.append(_comparison_sentence(design, primary, comp, power_rows.get(comp["arm"]),
                                          len(primary["comparisons"])))
    if report.get("open_windows"):
        parts.append(f"{report['open_windows']:,} units' attribution windows are still open, so these "
                     "numbers will still move.")
    return " ".join(parts)


# --------------------------------------------------------------------------- report


def analyze(
    design: Design,
    arms: Mapping[str, ArmData],
    *,
    cuped: Mapping[str, Cuped] | None = None,
    open_windows: int = 0,
    notes: Sequence[str] = (),
) -> dict:
    """The report body (see the experiments issue for the schema)."""
    if sum(1 for a in design.arms if a.control) != 1:
        raise ValueError("an experiment needs exactly one control arm")
    cuped = cuped or {}
    sizes = [arms.get(a.name, ArmData()).n for a in design.arms]
    srm = stats.srm_check(sizes, [a.weight for a in design.arms])
    srm["message"] = _srm_message(srm)
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
        "metrics": [_metric(design, m, arms, cuped.get(m.name)) for m in design.metrics],
    }
    if design.attribution_days is not None:
        report["attribution_days"] = design.attribution_days
    report["open_windows"] = int(open_windows)
    primary = next((m for m in report["metrics"] if m["primary"]), None)
    report["power"] = power_section(design, primary, arms) if primary else {}
    report["methods"] = _methods(design)
    report["notes"] = list(notes)
    report["verdict"] = verdict_text(design, report)
    return report


def _methods(design: Design) -> dict:
    seq = design.sequential
    return {
        "srm": "Pearson chi-square of arm sizes against planned weights; fail below p = 0.001, warn below 0.01",
        "binary": ("always-valid normal-mixture mSPRT interval and p-value" if seq else
                   "Wilson interval per arm; two-proportion z-test (Fisher's exact for small counts); "
                   "unpooled Wald interval for the difference; delta-method interval for the lift"),
        "continuous": ("always-valid normal-mixture mSPRT on Welch's statistic" if seq else
                       "Welch's t-test (unequal variances); delta-method interval for the lift"),
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
    adjusted = stats.adjust_pvalues([c["p_value"] for _, c in family])
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


# --------------------------------------------------------------------------- retention


def retention(
    design: Design,
    arm_index: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    observed_days: np.ndarray,
    *,
    days: Sequence[int],
    event: str,
    hazard_sample: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """Day-N retention, Kaplan-Meier per arm, log-rank and hazard ratios vs control.

    The event is a return (the first order, or first event of a kind, after exposure):
    stats' survival is then the share *not yet returned*, and its day-N "retained" share
    the complement of what we report as day-N retention (the share that came back).

    ``arm_index`` holds each unit's position in ``design.arms``: integers, because the
    per-arm masks and the log-rank test are several times slower on arrays of names.
    ``hazard_sample`` picks the units (indices into the arrays) the Cox fit uses from a
    comparison's mask; the Cox fit is the one step whose cost grows heavily with size.
    """
    control = design.control
    code = {a.name: i for i, a in enumerate(design.arms)}
    counts = np.bincount(arm_index, minlength=len(design.arms)) if arm_index.size else np.zeros(len(design.arms))
    present = [a.name for a in design.arms if counts[code[a.name]] > 0]
    masks = {arm: arm_index == code[arm] for arm in present}
    section: dict = {
        "event": event,
        "definition": (f"days from exposure to the first {event} after it; units without one are "
                       "censored at the report time"),
        "curve": "Kaplan-Meier share of units with no return yet, by days since exposure",
        "day_n": [], "kaplan_meier": [], "logrank": None, "hazard_ratios": [],
    }
    for n in days:
        rows = []
        for arm in present:
            mask = masks[arm]
            r = stats.day_n_retention(durations[mask], events[mask], observed_days[mask], n, alpha=design.alpha)
            lo, hi = r["ci"]
            rows.append({
                "arm": arm, "n": r["n"], "returned": r["n"] - r["retained"],
                "rate": None if r["rate"] is None else 1 - r["rate"],
                "ci": [None if hi is None else 1 - hi, None if lo is None else 1 - lo],
                "excluded": r["excluded"],
            })
        section["day_n"].append({"day": int(n), "arms": rows})
    for arm in present:
        mask = masks[arm]
        section["kaplan_meier"].append({"arm": arm, **stats.kaplan_meier(durations[mask], events[mask],
                                                                            alpha=design.alpha)})
    if len(present) >= 2 and events.sum() > 0:
        try:
            section["logrank"] = stats.logrank_test(durations, events, arm_index)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            # e.g. every unit returning at the same instant: the test has no variance.
            section["logrank"] = {"chi2": None, "p_value": None, "test": "logrank",
                                  "note": f"not computable on these data ({exc})"}
    # The Cox fit loops over distinct event times, so it runs on whole days (returns rounded
    # up, censoring down, which keeps who was at risk when): the same ratio to 3 decimals
    # on test data, several times faster than hours.
    days_whole = np.where(events == 1, np.ceil(durations), np.floor(durations))
    if control in present:
        for arm in present:
            if arm == control:
                continue
            mask = masks[arm] | masks[control]
            rows = hazard_sample(mask) if hazard_sample else np.flatnonzero(mask)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    warnings.simplefilter("always", RuntimeWarning)
                    hr = stats.hazard_ratio(days_whole[rows], events[rows],
                                            (arm_index[rows] == code[arm]).astype(int), alpha=design.alpha)
                # Overflow in exp() is the same failure seen from outside: the estimate ran off
                # to infinity (e.g. every return in one arm).
                if any(issubclass(w.category, (ConvergenceWarning, RuntimeWarning)) for w in caught):
                    raise ValueError("the Cox fit did not converge, usually too few returns")
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
                hr = {"hazard_ratio": None, "ci": [None, None], "p_value": None, "ties": "efron",
                      "note": f"not computable on these data: {exc}"}
            section["hazard_ratios"].append({
                "arm": arm, "control": control, **hr, "units": int(rows.size),
                "sampled_from": int(mask.sum()) if rows.size < mask.sum() else None,
                "meaning": f"above 1: {arm} units return sooner than {control} units",
            })
    section["note"] = ("day-N retention counts only units observed for at least N days; times are "
                       "rounded to the hour, and to whole days for the hazard ratio")
    if any(h["sampled_from"] for h in section["hazard_ratios"]):
        section["note"] += ("; hazard ratios of large comparisons come from a fixed random sample of "
                            "units (see units / sampled_from), the curves and tests from all units")
    return section
