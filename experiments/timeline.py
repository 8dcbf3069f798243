"""The cumulative difference over time: for each day since exposure, how far each arm's
share of converted units is from the control's, with its interval. Pure: no Django.

"Converted by day d" counts units whose first conversion came within d days of exposure,
over the units observed for at least d days, so late-exposed units never drag a curve
down for days they have not lived yet (the same rule as day-N retention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .stats import proportions


def cumulative_difference(
    arms: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    observed_days: np.ndarray,
    *,
    control: str,
    days: Sequence[int],
    alpha: float = 0.05,
    weights: np.ndarray | None = None,
) -> list[dict]:
    """One series per treatment arm: [{"arm", "day": [...], "diff": [...], "lo", "hi"}].

    ``weights``: row i stands for weights[i] units (rows grouped by arm and hour); none
    means one unit per row."""
    w = np.ones(arms.size) if weights is None else np.asarray(weights, dtype=float)
    series = []
    for arm in [a for a in dict.fromkeys(arms.tolist()) if a != control]:
        points = {"arm": arm, "day": [], "diff": [], "lo": [], "hi": []}
        for day in days:
            watched = observed_days >= day
            converted = watched & (events == 1) & (durations <= day)
            t, c = watched & (arms == arm), watched & (arms == control)
            n_t, n_c = int(round(w[t].sum())), int(round(w[c].sum()))
            if n_t == 0 or n_c == 0:
                continue
            result = proportions.compare_proportions(
                int(round(w[converted & t].sum())), n_t, int(round(w[converted & c].sum())), n_c, alpha=alpha
            )
            lo, hi = result["diff_ci"]
            points["day"].append(day)
            points["diff"].append(result["diff"])
            points["lo"].append(lo)
            points["hi"].append(hi)
        series.append(points)
    return series
