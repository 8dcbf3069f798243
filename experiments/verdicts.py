"""The verdict a marketer reads, from a finished report: the frequentist one (SRM first, then
the primary metric's comparisons with their power) and the Bayesian one (chance to beat
control and expected loss); which one the report shows is its ``engine``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from core import formatting

from .kinds import kind_get
from .readout import readiness
from .stats.bayes import CHANCE_TO_WIN_BAR

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

if TYPE_CHECKING:
    from .analysis import Design

DEFAULT_RELATIVE_MDE = 0.10  # the effect worth detecting when the experiment names none


def effect_of_interest(design: Design) -> tuple[float, bool, str]:
    if design.mde is not None:
        return design.mde, design.mde_relative, "planned"
    return DEFAULT_RELATIVE_MDE, True, "default"


def effect_text(kind: str, effect: float, relative: bool) -> str:
    if relative:
        return f"{effect * 100:+.0f}% relative change"
    return kind_get(kind).effect_text(effect)




def srm_message(srm: dict) -> str:
    p = formatting.p_clause(srm["p_value"]) if srm["p_value"] is not None else None
    if srm["status"] == "fail":
        return (f"SAMPLE RATIO MISMATCH ({p}): the arm sizes do not match the planned split, so "
                "assignment or exposure logging is broken and these results are not trustworthy.")
    if srm["status"] == "warning":
        return (f"Possible sample ratio mismatch ({p}): arm sizes deviate from the plan more than "
                "chance usually allows; check assignment before relying on the results.")
    return "Arm sizes match the planned split." if p else "No units yet."


def _comparison_sentence(design: Design, metric: dict, comp: dict, power_row: dict | None,
                         n_comparisons: int) -> str:
    name = metric["name"]
    kind = kind_get(metric["kind"])
    value_text, diff_text = kind.value_text, kind.diff_text
    means = {r["arm"]: r["mean"] for r in metric["arms"]}
    c, t = means.get(comp["control"]), means.get(comp["arm"])
    if kind.share:  # two different rates never read the same ("from 2% to 2%")
        pair = dict(zip((c, t), formatting.percent_pair(c, t))) if c != t else {}
        value_text = lambda x, _pair=pair, _v=value_text: _pair.get(x, _v(x))  # noqa: E731
    ci_name = f"{(1 - design.alpha) * 100:g}% {'always-valid ' if design.sequential else ''}CI"
    detail = f"{diff_text(comp['diff'])}, {ci_name} {kind.interval_text(comp['diff_ci'])}"
    if not comp.get("testable", True):
        return (f"{comp['arm']} vs {comp['control']}: {name} cannot be tested (no variance): "
                f"{value_text(t)} vs {value_text(c)}; {comp.get('note') or 'no spread to test against'}.")
    if comp["significant"]:
        verb = "raised" if (comp["diff"] or 0) > 0 else "lowered"
        if design.sequential:
            how = "significant under the sequential test"
        elif n_comparisons > 1:
            how = "significant after Holm correction"
        else:
            how = f"significant ({formatting.p_clause(comp['p_value'])})"
        return (f"{comp['arm']} {verb} {name} from {value_text(c)} to {value_text(t)} "
                f"({detail}); {how}.")
    if power_row and power_row.get("underpowered"):
        effect = effect_text(kind.name, *effect_of_interest(design)[:2])
        smallest = power_row.get("mde_absolute")
        smallest_text = f"; at this size only changes of about {diff_text(smallest)} are detectable" \
            if smallest is not None else ""
        return (f"{comp['arm']} vs {comp['control']}: not enough data: underpowered to detect a {effect} "
                f"in {name} (power {power_row['power'] * 100:.0f}%{smallest_text}). So far "
                f"{value_text(t)} vs {value_text(c)} ({detail}), not significant.")
    power_text = ""
    if power_row and power_row.get("power") is not None:
        effect = effect_text(kind.name, *effect_of_interest(design)[:2])
        power_text = f"; the test had {power_row['power'] * 100:.0f}% power to detect a {effect}"
    return (f"{comp['arm']} made no significant difference to {name}: {value_text(t)} vs "
            f"{value_text(c)} ({detail}){power_text}.")


def verdict_text(design: Design, report: dict) -> str:
    parts = []
    srm = report["srm"]
    if srm["status"] == "fail":
        parts.append("Results are not trustworthy: " + srm_message(srm))
    elif srm["status"] == "warning":
        parts.append(srm_message(srm))
    if report["units"] == 0:
        return " ".join(parts + ["No data yet: no units have been exposed."])
    primary = next((m for m in report["metrics"] if m["primary"]), None)
    if primary is None or not primary["comparisons"]:
        return " ".join(parts + ["No comparison possible yet: an arm has no units."])
    early = readiness(report, now=EPOCH)  # stored with the report: judged against the build time
    if early is not None:
        # Until the windows close (or the planned size is reached) a fixed-horizon test is not
        # judged: "no significant difference" minutes after launch would mislead. A sequential
        # test may still call a significant result early.
        called = [c for c in primary["comparisons"] if design.sequential and c["significant"]]
        if not called:
            return " ".join(parts + [early["text"]])
    power_rows = {r["arm"]: r for r in report["power"].get("comparisons", [])}
    for comp in primary["comparisons"]:
        parts.append(_comparison_sentence(design, primary, comp, power_rows.get(comp["arm"]),
                                          len(primary["comparisons"])))
    if report.get("open_windows"):
        parts.append(f"{report['open_windows']:,} units' attribution windows are still open, so these "
                     "numbers will still move.")
    return " ".join(parts)


def report_for_engine(report: dict, engine: str) -> dict:
    """The report as read with ``engine`` ("frequentist" or "bayesian"): the same numbers
    (every comparison carries both reads), the verdict of that engine."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    verdicts = report.get("verdicts") or {}
    if engine == report.get("engine", "frequentist") or engine not in verdicts:
        return report
    return {**report, "engine": engine, "verdict": verdicts[engine]}


ENGINES = ("frequentist", "bayesian")


def _bayes_sentence(metric: dict, comp: dict) -> str:
    name, ctw, ci = metric["name"], comp.get("chance_to_win"), comp.get("credible_interval") or [None, None]
    if ctw is None or None in ci:
        return f"{comp['arm']} vs {comp['control']}: no Bayesian read of {name} ({comp.get('note') or 'no spread'})."
    loss = comp.get("expected_loss") or 0.0
    detail = (f"relative effect {formatting.lift(comp['posterior_mean'])}, credible interval "
              f"{formatting.lift(ci[0])} to {formatting.lift(ci[1])}; expected loss if "
              f"shipped {loss * 100:.2f}%")
    if ctw >= CHANCE_TO_WIN_BAR:
        head = f"{comp['arm']} beats {comp['control']} on {name} with {ctw * 100:.1f}% probability"
    elif ctw <= 1 - CHANCE_TO_WIN_BAR:
        head = f"{comp['arm']} is worse than {comp['control']} on {name} with {(1 - ctw) * 100:.1f}% probability"
    else:
        head = (f"{comp['arm']} vs {comp['control']}: {ctw * 100:.1f}% chance to beat control on {name}, "
                f"short of the {CHANCE_TO_WIN_BAR * 100:.0f}% bar")
    return f"{head} ({detail})."


def bayes_verdict_text(design: Design, report: dict) -> str:
    """The verdict as the Bayesian engine reads it, SRM first as always."""
    parts = [f"Bayesian engine (GrowthBook's Gaussian effect model, {design.prior.describe()}):"]
    srm = report["srm"]
    if srm["status"] in ("fail", "warning"):
        parts.append(srm_message(srm))
    primary = next((m for m in report["metrics"] if m["primary"]), None)
    if report["units"] == 0 or primary is None or not primary["comparisons"]:
        return " ".join(parts + ["no comparison possible yet."])
    parts += [_bayes_sentence(primary, comp) for comp in primary["comparisons"]]
    return " ".join(parts)


