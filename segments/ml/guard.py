"""Guard rails before a model's scores choose customers: no signal, a likely leak, ties.
Pure (no Django): the segments and experiments services ask it, the pages show its words.

A model becomes a segment only when it can rank customers. Three ways it cannot:
- no signal: on held-out customers it ranks no better than chance (ROC AUC near 0.5 for a
  propensity model, a Qini coefficient at or below 0 for an uplift model, or above 0 by no
  more than chance: the same ranking reaches it with the treatment labels shuffled);
- every customer gets the same score, so any "top 20%" is an arbitrary pick;
- a likely leak: it is too good to be true (ROC AUC near 1), or one feature nearly equals
  the target. Such a feature is usually recorded after the outcome (a "churned_at", the
  order that is the conversion) and will not be known when the model is used.
The verdicts are sentences for a marketer; `code` is for programs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.formatting import p_clause

# Thresholds: an AUC this close to 0.5 is a coin flip for marketing purposes; this close
# to 1 on customer behaviour is almost always a leak. A feature whose rank correlation with
# the target reaches LEAK_ASSOCIATION nearly is the target.
NO_SIGNAL_AUC = 0.55
LEAK_AUC = 0.99
LEAK_ASSOCIATION = 0.95
# A Qini coefficient that shuffled treatment labels reach more often than this is noise
# (used when the model's evaluation did not store its own alpha).
QINI_ALPHA = 0.05
MAX_CATEGORIES = 20


@dataclass(frozen=True)
class Concern:
    code: str  # no_signal, constant_scores, leakage
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _column_numbers(column: pd.Series) -> list[tuple[str, np.ndarray]]:
    """A feature as numbers: itself if numeric or boolean, one indicator per frequent value
    if text (a leak can hide in one category: status == "churned")."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return [("", pd.to_numeric(column, errors="coerce").astype(float).to_numpy())]
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().mean() > 0.95:
        return [("", numeric.astype(float).to_numpy())]
    values = column.astype("object").where(column.notna(), None)
    top = values.value_counts().index[:MAX_CATEGORIES]
    return [(f" = {v}", (values == v).astype(float).to_numpy()) for v in top]


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 3:
        return None
    xr = pd.Series(x[keep]).rank().to_numpy()
    yr = pd.Series(y[keep]).rank().to_numpy()
    if xr.std() == 0 or yr.std() == 0:
        return None
    return float(np.corrcoef(xr, yr)[0, 1])


def feature_target_association(frame: pd.DataFrame, target: Sequence[float] | np.ndarray,
                               features: Sequence[str] | None = None, top: int = 5) -> list[dict[str, Any]]:
    """How nearly each feature alone is the target: |Spearman rank correlation|, strongest
    first (rank-based, so spend > 0 exactly when converted counts as equal to converting)."""
    y = pd.to_numeric(pd.Series(np.asarray(target)), errors="coerce").astype(float).to_numpy()
    rows = []
    for name in features or list(frame.columns):
        best: tuple[float, str] | None = None
        for suffix, x in _column_numbers(frame[name].reset_index(drop=True)):
            r = _rank_correlation(x, y)
            if r is not None and (best is None or abs(r) > best[0]):
                best = (abs(r), suffix)
        if best is not None:
            rows.append({"feature": f"{name}{best[1]}", "association": round(best[0], 4)})
    rows.sort(key=lambda r: -r["association"])
    return rows[:top]


def score_spread(scores: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """How many different scores there are, and the range: a model with one is no ranking."""
    s = np.asarray(scores, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {"distinct": 0, "min": None, "max": None}
    return {"distinct": int(np.unique(s).size), "min": float(s.min()), "max": float(s.max())}


def _leak_from_association(info: Mapping[str, Any], target_words: str) -> list[Concern]:
    leaks = [a for a in info.get("target_association") or [] if a["association"] >= LEAK_ASSOCIATION]
    if not leaks:
        return []
    first = leaks[0]
    return [Concern("leakage", (
        f"Likely leak: the feature {first['feature']} alone nearly equals {target_words} (rank correlation "
        f"{first['association']:.2f}; 1 would be the same thing). It was probably recorded after the outcome, "
        f"so it will not be known when the model is used. Train without it."))]


def _constant(spread: Mapping[str, Any] | None, what: str) -> list[Concern]:
    if spread and spread.get("distinct") == 1:
        return [Concern("constant_scores", (
            f"Every customer gets the same {what} ({spread['min']:.6g}): the model cannot tell customers apart, "
            f"so a \"top 20%\" would be an arbitrary pick."))]
    return []


def propensity_concerns(metrics: Mapping[str, Any], info: Mapping[str, Any]) -> list[Concern]:
    concerns = _constant(info.get("score_spread"), "score")
    auc = metrics.get("roc_auc")
    if auc is not None and not concerns and auc < NO_SIGNAL_AUC:
        concerns.append(Concern("no_signal", (
            f"No signal: on held-out customers it tells who will and who will not apart barely better than a coin "
            f"flip (ROC AUC {auc:.2f}; 0.5 is a coin flip, 1 is perfect). Its top scores are close to a random pick.")))
    concerns += _leak_from_association(info, "the target")
    if auc is not None and auc >= LEAK_AUC and not any(c.code == "leakage" for c in concerns):
        concerns.append(Concern("leakage", (
            f"Likely leak: it is too good to be true on held-out customers (ROC AUC {auc:.3f}). Behaviour rarely "
            f"predicts that well; a feature probably carries the answer. Check the features before using it.")))
    return concerns


def value_concerns(metrics: Mapping[str, Any], info: Mapping[str, Any]) -> list[Concern]:
    # "No better than the average" is shown with the metrics (beats_baseline) rather than
    # held against it: a spend forecast can be useful in total while weak per customer.
    return _constant(info.get("score_spread"), "predicted value") + _leak_from_association(info, "the target")


def uplift_concerns(info: Mapping[str, Any]) -> list[Concern]:
    """From an uplift model's cross-fitted evaluation (experiments.uplift.uplift_train)."""
    predicted = [d.get("predicted_uplift") for d in info.get("deciles") or [] if d.get("predicted_uplift") is not None]
    spread = info.get("score_spread")
    if spread is None and predicted and max(predicted) - min(predicted) <= 1e-12 * max(1.0, abs(max(predicted))):
        spread = {"distinct": 1, "min": predicted[0]}
    concerns = _constant(spread, "predicted uplift")
    qini = info.get("qini_coefficient")
    if qini is not None and not concerns and (qini <= 0 or math.isclose(qini, 0, abs_tol=1e-9)):
        concerns.append(Concern("no_signal", (
            f"No signal: on held-out units, targeting by this model gains no more than picking customers at random "
            f"(Qini coefficient {qini:.5f}; above 0 means better than random). Treat everyone or no one instead.")))
    elif qini is not None and not concerns:
        concerns += _qini_within_noise(qini, info.get("qini_null"))
    return concerns + _leak_from_association(info, "the outcome")


def _qini_within_noise(qini: float, null: Mapping[str, Any] | None) -> list[Concern]:
    """A Qini above 0 that the same ranking reaches often with shuffled treatment labels (p-value
    above alpha, experiments.uplift.qini_null): its gain over random targeting may be luck.
    Models trained before the test was stored have no null and are judged by the sign."""
    if not null or null.get("p_value") is None:
        return []
    alpha = null.get("alpha") or QINI_ALPHA
    p = float(null["p_value"])
    if p <= alpha:
        return []
    return [Concern("no_signal", (
        f"No signal beyond noise: on held-out units the Qini coefficient is {qini:.5f}, above 0, but chance alone "
        f"gets that far. With the treatment given to other customers picked at random, the same ranking reaches it "
        f"in {p:.0%} of {int(null['permutations']):,} shuffles ({p_clause(p)}; more than luck would need p below "
        f"{alpha:g}). Its gain over random targeting may be luck. Treat everyone or no one "
        f"instead, or learn from a larger test."))]


def model_concerns(kind: str, metrics: Mapping[str, Any], info: Mapping[str, Any]) -> list[Concern]:
    if kind == "propensity":
        return propensity_concerns(metrics, info)
    if kind == "value":
        return value_concerns(metrics, info)
    if kind == "uplift":
        return uplift_concerns(info)
    return []  # clusters and tiers describe customers; they do not predict an outcome


@dataclass(frozen=True)
class RankCut:
    """Where "the top `fraction`" falls in scores sorted high to low, and who ties there."""

    total: int
    size: int  # customers the fraction asks for
    cut_score: float | None  # the lowest score inside
    above: int  # customers scoring more than the cut score
    tied: int  # customers scoring exactly the cut score

    @property
    def splits_a_tie(self) -> bool:
        """Some customers with the cut score are in and some out: which is arbitrary."""
        return self.size > 0 and self.above + self.tied > self.size

    @property
    def with_ties(self) -> int:
        return self.above + self.tied

    def words(self, fraction: float, what: str = "score") -> str:
        share = f"{fraction * 100:g}%"
        if self.tied == self.total:
            return (f"All {self.total:,} customers have the same {what} ({self.cut_score:.6g}), so a top {share} "
                    f"({self.size:,}) would be an arbitrary pick. Take all tied ({self.total:,} customers) or use a "
                    f"model that tells customers apart.")
        return (f"The top {share} ends inside a tie: {self.tied:,} customers share the {what} {self.cut_score:.6g} "
                f"and only {self.size - self.above:,} of them fit, which would be an arbitrary pick. Take all tied "
                f"({self.with_ties:,} customers, {self.with_ties / self.total:.1%}) or choose another share.")


def rank_cut(scores: Sequence[float] | np.ndarray, fraction: float) -> RankCut:
    s = np.asarray(scores, dtype=float)
    size = int(math.ceil(fraction * s.size))
    if s.size == 0 or size == 0:
        return RankCut(int(s.size), size, None, 0, 0)
    cut = float(np.sort(s)[::-1][size - 1])
    return RankCut(int(s.size), size, cut, int((s > cut).sum()), int((s == cut).sum()))
