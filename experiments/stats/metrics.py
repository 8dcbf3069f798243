"""One metric's result: arms, comparisons with control, Holm for the primary metric."""

from __future__ import annotations

from collections.abc import Mapping

from .multiple import adjust_pvalues


def metric_result(name: str, primary: bool, arms: list[dict], comparisons: list[dict], alpha: float) -> dict:
    """The metric's section of a report; the caller (experiments.kinds) adds its kind."""
    # Holm over this metric's comparisons only when it is primary: secondary metrics are
    # read as exploratory and keep their raw p-values.
    adjusted = adjust_pvalues([c["p_value"] for c in comparisons]) if primary else [None] * len(comparisons)
    for comp, p_adj in zip(comparisons, adjusted):
        comp["p_adjusted"] = p_adj
        p = p_adj if primary else comp["p_value"]
        comp["significant"] = bool(p is not None and p < alpha and comp.get("testable", True))
    return {"name": name, "primary": primary, "arms": arms, "comparisons": comparisons}


def comparison_row(arm: str, control: str, comp: dict) -> dict:
    keys = ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test", "note")
    return {"arm": arm, "control": control, **{k: comp[k] for k in keys}, "testable": comp.get("testable", True),
            **({"diff_ci_method": comp["diff_ci_method"]} if "diff_ci_method" in comp else {}),
            **{k: comp[k] for k in BAYES_KEYS if k in comp}}


BAYES_KEYS = ("chance_to_win", "expected_loss", "expected_loss_control", "credible_interval",
              "credible_interval_absolute", "posterior_mean", "posterior_sd")


def check_control(arms: Mapping, control: str) -> None:
    if control not in arms:
        raise ValueError(f"control arm {control!r} not among arms {list(arms)}")
