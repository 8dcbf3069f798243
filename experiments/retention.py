"""The report's retention section: day-N retention, Kaplan-Meier per arm, log-rank and
hazard ratios against control, from per-unit arrays. No Django here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .analysis import Design
from .stats import retention as survival


def retention_section(
    design: Design,
    arm_index: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    observed_days: np.ndarray,
    *,
    days: Sequence[int],
    event: str,
    weights: np.ndarray | None = None,
) -> dict:
    """Day-N retention, Kaplan-Meier per arm, log-rank and hazard ratios vs control.

    The event is a return (the first order, or first event of a kind, after exposure):
    stats' survival is then the share *not yet returned*, and its day-N "retained" share
    the complement of what we report as day-N retention (the share that came back).

    ``arm_index`` holds each unit's position in ``design.arms``: integers, because the
    per-arm masks and the log-rank test are several times slower on arrays of names.
    ``weights``: row i stands for weights[i] units (the report passes rows grouped by arm
    and hour, a few thousand for a million units); none means one unit per row.
    """
    control = design.control
    code = {a.name: i for i, a in enumerate(design.arms)}
    weights = np.ones(arm_index.size) if weights is None else np.asarray(weights, dtype=float)
    counts = (np.bincount(arm_index, weights=weights, minlength=len(design.arms)) if arm_index.size
              else np.zeros(len(design.arms)))
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
            r = survival.day_n_retention(durations[mask], events[mask], observed_days[mask], n, alpha=design.alpha,
                                         weights=weights[mask])
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
        section["kaplan_meier"].append({"arm": arm, **survival.kaplan_meier(durations[mask], events[mask],
                                                                            alpha=design.alpha, weights=weights[mask])})
    if len(present) >= 2 and (weights * events).sum() > 0:
        try:
            section["logrank"] = survival.logrank_test(durations, events, arm_index, weights=weights)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            # e.g. every unit returning at the same instant: the test has no variance.
            section["logrank"] = {"chi2": None, "p_value": None, "test": "logrank",
                                  "note": f"not computable on these data ({exc})"}
    # The Cox fit runs on whole days (returns rounded up, censoring down, which keeps who
    # was at risk when): its cost follows the distinct times, and days are few.
    days_whole = np.where(events == 1, np.ceil(durations), np.floor(durations))
    if control in present:
        for arm in present:
            if arm == control:
                continue
            mask = masks[arm] | masks[control]
            try:
                hr = survival.hazard_ratio(days_whole[mask], events[mask], (arm_index[mask] == code[arm]).astype(int),
                                           alpha=design.alpha, weights=weights[mask])
            except (ValueError, ZeroDivisionError) as exc:
                hr = {"hazard_ratio": None, "ci": [None, None], "p_value": None, "ties": "efron",
                      "note": f"not computable on these data: {exc}"}
            section["hazard_ratios"].append({
                "arm": arm, "control": control, **hr, "units": int(round(weights[mask].sum())),
                "sampled_from": None,  # kept for the JSON contract: every unit is used
                "meaning": f"above 1: {arm} units return sooner than {control} units",
            })
    section["note"] = ("day-N retention counts only units observed for at least N days; times are "
                       "rounded to the hour, and to whole days for the hazard ratio")
    return section
