"""RFM: recency, frequency and monetary quintiles, and the 11 named tiers. Pure (no Django)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .common import FREQUENCY, MONETARY, RECENCY, model_info, require_columns
from .preprocessing import coerce_frame

RFM_TIERS: tuple[str, ...] = (
    "Champions", "Loyal", "Potential loyalists", "New customers", "Promising",
    "Need attention", "About to sleep", "At risk", "Cannot lose them", "Hibernating", "Lost",
)

# The tier is read off a 5x5 grid of the R score against FM = floor((F + M) / 2): the
# 11 segments of Putler's RFM guide ("RFM Analysis For Successful Customer Segmentation",
# putler.com/rfm-analysis), which plots R against the average of F and M because
# frequency and spend move together, in the cell-by-cell form widely republished in
# open RFM notebooks as the ordered regex map {'22': hibernating, '[1-2][1-2]': lost,
# '15': can't lose, '[1-2][3-5]': at risk, '3[1-2]': about to sleep, '33': need attention,
# '55': champions, '[3-5][4-5]': loyal customers, '41': promising, '51': new customers,
# '[4-5][2-3]': potential loyalists}. Spelled out below: rows R = 1..5, columns FM = 1..5.
_RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    1: ("Lost", "Lost", "At risk", "At risk", "Cannot lose them"),
    2: ("Lost", "Hibernating", "At risk", "At risk", "At risk"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),
    5: ("New customers", "Potential loyalists", "Potential loyalists", "Loyal", "Champions"),
}


def _rfm_goodness(frame: pd.DataFrame) -> pd.DataFrame:
    """R, F, M oriented so that larger is better, with gaps filled pessimistically.

    No last order (recency missing) ranks as the longest-gone; no orders or spend
    recorded counts as zero. Recency is negated so one scoring rule serves all three.
    """
    require_columns(frame, [RECENCY, FREQUENCY, MONETARY])
    numeric = coerce_frame(frame, [RECENCY, FREQUENCY, MONETARY])
    return pd.DataFrame({
        "r": -numeric[RECENCY].fillna(np.inf),
        "f": numeric[FREQUENCY].fillna(0.0),
        "m": numeric[MONETARY].fillna(0.0),
    }, index=frame.index)


def _quintile_scores(values: pd.Series) -> pd.Series:
    if len(values) == 1:
        return pd.Series([3], index=values.index)  # one customer is nobody's top or bottom
    # rank(method="first") gives every row a distinct rank, so the quintile edges are
    # always distinct and qcut cannot fail on heavy ties (e.g. half the base with F=1).
    ranks = values.rank(method="first")
    return pd.qcut(ranks, 5, labels=[1, 2, 3, 4, 5]).astype(int)


def _with_tiers(scores: pd.DataFrame) -> pd.DataFrame:
    scores["fm"] = (scores["f"] + scores["m"]) // 2
    scores["code"] = (scores["r"].astype(str) + scores["f"].astype(str) + scores["m"].astype(str))
    grid = np.array([_RFM_GRID[r] for r in range(1, 6)], dtype=object)
    scores["tier"] = grid[scores["r"].to_numpy() - 1, scores["fm"].to_numpy() - 1]
    return scores


def rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Quintile scores within this frame: columns r, f, m (1..5), fm, code ("555"), tier.

    Recency: fewer days since the last order is a higher score. Customers tied on a value
    are split across quintiles by row order (rank method="first"), so every quintile holds
    a fifth of the base; use `RfmScorer` to score new rows against a fixed population.
    """
    goodness = _rfm_goodness(frame)
    if goodness.empty:
        return pd.DataFrame(columns=["r", "f", "m", "fm", "code", "tier"], index=frame.index)
    scores = pd.DataFrame({c: _quintile_scores(goodness[c]) for c in ("r", "f", "m")})
    return _with_tiers(scores)


class RfmScorer(TransformerMixin, BaseEstimator):
    """RFM quintile edges learned from a population, to score any later chunk of it.

    `rfm_scores` ranks inside the frame it is given, so scoring chunk by chunk would rank
    each chunk against itself. This stores the value at the top of each quintile instead;
    a value that sits exactly on an edge goes to the lower quintile (ties cannot be split
    by value), so a tied customer always gets the same score whatever chunk it is in.
    """

    def fit(self, frame: pd.DataFrame, y: Any = None) -> RfmScorer:
        goodness = _rfm_goodness(frame)
        if len(goodness) < 5:
            raise ValueError("RFM quintiles need at least 5 customers")
        scores = rfm_scores(frame)
        self.edges_ = {
            c: goodness[c].groupby(scores[c]).max().reindex(range(1, 5)).to_numpy(dtype=float)
            for c in ("r", "f", "m")
        }
        self.n_features_in_ = 3
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        goodness = _rfm_goodness(frame)
        scores = pd.DataFrame(index=frame.index)
        for c in ("r", "f", "m"):
            scores[c] = np.searchsorted(self.edges_[c], goodness[c].to_numpy(), side="left") + 1
        return _with_tiers(scores)


def rfm_train(frame: pd.DataFrame) -> tuple[RfmScorer, dict[str, Any]]:
    """Fit an `RfmScorer` on the whole base; info holds the edges and the tier counts."""
    started = time.perf_counter()
    scorer = RfmScorer().fit(frame)
    tiers = scorer.transform(frame)["tier"].value_counts()
    counts = {tier: int(tiers.get(tier, 0)) for tier in RFM_TIERS}
    # Edges back in natural units (days, orders, spend) for display.
    edges = {
        RECENCY: [-v for v in scorer.edges_["r"]],
        FREQUENCY: list(scorer.edges_["f"]),
        MONETARY: list(scorer.edges_["m"]),
    }
    metrics = {"tier_counts": counts, "tier_shares": {t: n / len(frame) for t, n in counts.items()}}
    params = {"quintiles": 5, "grid": "R x floor((F+M)/2), 11 tiers", "edges": edges}
    return scorer, model_info("rfm", params, [RECENCY, FREQUENCY, MONETARY], len(frame), started, metrics)
