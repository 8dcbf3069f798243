"""Model-derived segments: scikit-learn pipelines over per-customer feature frames.

Pure computation, no Django (DESIGN.md: pure modules can be tested and reused alone).
The Django side builds a pandas DataFrame with one row per customer, indexed by customer
id (recency_days, frequency, monetary, tenure_days, orders_30d, events_*_90d and any
attribute columns: numeric, boolean or categorical strings, with gaps), and stores what
comes back: a fitted model (bytes from `model_dump`) and its `info`.

Every `*_train` returns `(model, info)`. `info` is JSON-ready (plain floats, ints, strings,
lists, dicts; NaN/inf become None) and always holds: kind, params, features,
training_rows, seconds, metrics, versions.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import calibration_curve
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
    silhouette_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

Kind = Literal["kmeans", "rfm", "propensity", "value"]
KINDS: tuple[str, ...] = ("kmeans", "rfm", "propensity", "value")

RECENCY, FREQUENCY, MONETARY = "recency_days", "frequency", "monetary"

# Purchase counts, spend and days-since-last-order are heavy-tailed: a few customers buy
# hundreds of times or have been gone for years. Left raw, those few dominate the squared
# distances k-means minimises, so the clusters end up describing outliers instead of the
# bulk of the base; log1p compresses the tail while keeping order (and 0 stays 0).
HEAVY_TAILED: frozenset[str] = frozenset({RECENCY, FREQUENCY, MONETARY})
# Other non-negative columns get the same treatment when the data shows this much skew.
SKEW_FOR_LOG = 1.0
# Past this many rows full-batch k-means gets slow for an interactive "train" button;
# mini-batch is within a few percent of its inertia at a fraction of the cost.
MINIBATCH_ROWS = 50_000
# One-hot columns per categorical attribute; rarer values share one "infrequent" column
# so a free-text-like attribute cannot blow up the width of the design matrix.
MAX_CATEGORIES = 30
# Permutation importance re-scores the holdout once per feature and repeat; cap the rows.
IMPORTANCE_MAX_ROWS = 20_000


# --------------------------------------------------------------------------- common


def _jsonable(value: Any) -> Any:
    """Plain Python for `info`, which the Django side stores in a JSONField."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [_jsonable(v) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # JSON has no NaN/inf; None says "not defined" (e.g. the first ROC threshold).
        return float(value) if math.isfinite(value) else None
    return value


def _versions() -> dict[str, str]:
    # Pickled pipelines are only guaranteed to load under the library versions that wrote
    # them; recording them lets the loader say why an old model no longer loads.
    return {"scikit-learn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__}


def _info(kind: str, params: dict, features: Sequence[str], rows: int, started: float,
          metrics: dict, **extra: Any) -> dict[str, Any]:
    info = {
        "kind": kind,
        "params": params,
        "features": list(features),
        "training_rows": rows,
        "seconds": round(time.perf_counter() - started, 3),
        "metrics": metrics,
        "versions": _versions(),
        **extra,
    }
    return _jsonable(info)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    # A silently imputed missing column would score everyone on the median; fail loudly.
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the frame: {missing}")


def _is_boolean_like(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return True
    if series.dtype == object:
        values = series.dropna()
        return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)
    return False


def split_feature_types(frame: pd.DataFrame, features: Sequence[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns. Booleans count as numeric 0/1: one column, no one-hot."""
    numeric: list[str] = []
    categorical: list[str] = []
    for column in features:
        series = frame[column]
        if _is_boolean_like(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(column)
        else:
            categorical.append(column)
    return numeric, categorical


def _coerce_frame(frame: pd.DataFrame, numeric: Sequence[str] = (),
                  categorical: Sequence[str] = ()) -> pd.DataFrame:
    """Select the model's columns with one dtype each, so every later step sees the same shape.

    Chunks read from the database disagree on dtypes (a boolean column with a gap arrives
    as object, an all-empty chunk as float), so the pipeline normalises them itself
    instead of trusting the caller.
    """
    _require_columns(frame, [*numeric, *categorical])
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        out[column] = values.replace([np.inf, -np.inf], np.nan)
    for column in categorical:
        values = frame[column].astype(object)
        # str() so 1 and "1" are one category; None/pd.NA become NaN, which the imputer knows.
        out[column] = values.map(str).where(values.notna(), np.nan)
    return out


def _coercer(numeric: Sequence[str], categorical: Sequence[str] = ()) -> FunctionTransformer:
    return FunctionTransformer(
        _coerce_frame, kw_args={"numeric": list(numeric), "categorical": list(categorical)}
    )


def _log1p_nonnegative(values: np.ndarray) -> np.ndarray:
    # Clip first: a negative value at scoring time (bad import, refund) must not become NaN.
    return np.log1p(np.clip(values, 0.0, None))


# ------------------------------------------------------------------------ clustering


def _log_features(numeric: pd.DataFrame) -> list[str]:
    chosen = []
    for column in numeric.columns:
        values = numeric[column].dropna()
        if values.empty or values.min() < 0 or values.nunique() <= 2:
            continue  # log of negatives is undefined; 0/1 flags gain nothing from it
        if column in HEAVY_TAILED or values.skew() > SKEW_FOR_LOG:
            chosen.append(column)
    return chosen


def _kmeans_preprocessor(features: Sequence[str], log_features: Sequence[str]) -> list[tuple[str, Any]]:
    linear = [c for c in features if c not in log_features]
    columns = ColumnTransformer(
        [
            ("log", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("log1p", FunctionTransformer(_log1p_nonnegative))]), list(log_features)),
            ("linear", SimpleImputer(strategy="median"), linear),
        ]
    )
    # Scaling after the log: k-means is distance-based, so without it the feature with the
    # widest numeric range (spend in cents vs. a 0..30 order count) would decide alone.
    return [("coerce", _coercer(features)), ("columns", columns), ("scale", StandardScaler())]


def _kmeans_estimator(k: int, rows: int, random_state: int) -> KMeans | MiniBatchKMeans:
    if rows > MINIBATCH_ROWS:
        return MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=random_state)
    # Several k-means++ starts: one unlucky start can merge two real groups, which both
    # misleads the silhouette comparison and hands the marketer a blurred segment.
    return KMeans(n_clusters=k, n_init=4, random_state=random_state)


def _order_clusters(model: KMeans | MiniBatchKMeans, numeric: pd.DataFrame) -> np.ndarray:
    """Renumber clusters by mean monetary value, highest first; returns the new labels.

    k-means numbers clusters arbitrarily, so a re-train would otherwise shuffle "cluster 0"
    between refreshes and break segment history. Permuting the fitted centres is enough:
    predict/transform read only `cluster_centers_`.
    """
    labels = model.labels_
    k = model.cluster_centers_.shape[0]
    sizes = np.bincount(labels, minlength=k)
    key_column = MONETARY if MONETARY in numeric.columns else None
    if key_column is not None:
        means = numeric[key_column].groupby(labels).mean().reindex(range(k)).fillna(-np.inf)
        primary = -means.to_numpy()
    else:
        primary = -sizes.astype(float)
    # Ties (equal spend) fall back to size, then to the centre coordinates: never to chance.
    keys = [*model.cluster_centers_.T[::-1], -sizes, primary]
    order = np.lexsort(keys)
    new_label = np.empty(k, dtype=int)
    new_label[order] = np.arange(k)
    model.cluster_centers_ = model.cluster_centers_[order]
    model.labels_ = new_label[labels]
    return model.labels_


_LEVEL_WORDS: dict[str, dict[str, str]] = {
    RECENCY: {"low": "recent", "high": "lapsed"},
    FREQUENCY: {"low": "infrequent", "high": "frequent"},
    MONETARY: {"low": "low-spending", "high": "high-spending"},
    "tenure_days": {"low": "new", "high": "long-standing"},
    "orders_30d": {"low": "quiet this month", "high": "active this month"},
    "events_support_ticket_90d": {"low": "few support tickets", "high": "many support tickets"},
}


def _percentile_of(sorted_values: np.ndarray, value: float) -> float:
    """Mid-rank percentile of `value` in the population: ties count half below, half above.

    Plain "below the 33rd percentile" breaks on count data: with 40% one-time buyers the
    33rd and 67th percentiles can both be 1, and the one-time-buyer cluster would read
    "medium". The mid-rank puts it at the 20th percentile, i.e. "low", as a person would.
    """
    if len(sorted_values) == 0 or not math.isfinite(value):
        return 0.5
    below = np.searchsorted(sorted_values, value, side="left")
    upto = np.searchsorted(sorted_values, value, side="right")
    return float((below + upto) / 2 / len(sorted_values))


def _level(percentile: float) -> str:
    return "low" if percentile < 1 / 3 else "high" if percentile > 2 / 3 else "medium"


def _describe(levels: dict[str, str], percentiles: dict[str, float], max_words: int = 4) -> str:
    notable = [c for c, level in levels.items() if level != "medium"]
    # R, F, M first because marketers read segments in those terms; then the rest by how
    # far from typical the cluster sits.
    rfm = [c for c in (RECENCY, FREQUENCY, MONETARY) if c in notable]
    rest = sorted((c for c in notable if c not in rfm), key=lambda c: -abs(percentiles[c] - 0.5))
    words = []
    for column in (rfm + rest)[:max_words]:
        vocabulary = _LEVEL_WORDS.get(column)
        level = levels[column]
        words.append(vocabulary[level] if vocabulary else f"{level} {column.replace('_', ' ')}")
    return ", ".join(words) if words else "typical on every feature"


def _suggest_name(levels: dict[str, str], description: str) -> str:
    r, f, m = levels.get(RECENCY), levels.get(FREQUENCY), levels.get(MONETARY)
    if r is None or (f is None and m is None):
        return description[:1].upper() + description[1:]
    valuable = "high" in (f, m)
    if r == "low" and f != "low" and m != "low" and valuable:
        return "Champions"
    if r == "high" and valuable:
        return "High-value at risk"
    if r == "high":
        return "Hibernating"
    if r == "low" and "low" in (f, m):
        return "New customers"
    if valuable:
        return "Loyal regulars"
    if "low" in (f, m):
        return "Occasional buyers"
    return "Steady middle"


def _cluster_profiles(numeric: pd.DataFrame, labels: np.ndarray, k: int) -> list[dict[str, Any]]:
    population = {c: np.sort(numeric[c].dropna().to_numpy()) for c in numeric.columns}
    grouped = numeric.groupby(labels)
    means, medians = grouped.mean(), grouped.median()
    sizes = np.bincount(labels, minlength=k)
    profiles, used_names = [], set()
    for label in range(k):
        # Medians decide the words: a handful of whales would drag a cluster's mean spend
        # into "high" while the typical member is an ordinary customer.
        percentiles = {c: _percentile_of(population[c], medians.loc[label, c]) for c in numeric.columns}
        levels = {c: _level(p) for c, p in percentiles.items()}
        description = _describe(levels, percentiles)
        name = _suggest_name(levels, description)
        base, n = name, 2
        while name in used_names:  # names become segment names; keep them distinct
            name, n = f"{base} {n}", n + 1
        used_names.add(name)
        profiles.append({
            "label": label, "name": name, "description": description,
            "size": int(sizes[label]), "share": float(sizes[label] / len(labels)),
            "means": means.loc[label].to_dict(), "medians": medians.loc[label].to_dict(),
            "levels": levels,
        })
    return profiles


def kmeans_train(
    frame: pd.DataFrame,
    features: Sequence[str],
    k_range: Iterable[int] = range(2, 9),
    sample_size: int = 10_000,
    random_state: int = 0,
) -> tuple[Pipeline, dict[str, Any]]:
    """Cluster customers on numeric features; k chosen by the best silhouette over `k_range`.

    Silhouette is O(n²), so it is computed on one fixed random sample of `sample_size`
    rows (the same rows for every k, so the comparison is fair). Labels are renumbered by
    mean monetary value, highest first, so a re-train keeps label numbers stable.
    """
    started = time.perf_counter()
    features = list(features)
    _require_columns(frame, features)
    numeric_cols, categorical = split_feature_types(frame, features)
    if categorical:
        # Euclidean distance over one-hot columns is not meaningful for k-means; use
        # propensity/value models (or rule segments) for categorical attributes.
        raise ValueError(f"k-means takes numeric or boolean features only; got {categorical}")
    numeric = _coerce_frame(frame, features)
    rows = len(numeric)
    ks = sorted({int(k) for k in k_range if 2 <= int(k) < rows})
    if not ks:
        raise ValueError(f"no usable k in {list(k_range)} for {rows} rows")
    log_features = _log_features(numeric)

    scores: list[dict[str, float]] = []
    best: tuple[float, int, Pipeline] | None = None
    for k in ks:
        pipeline = Pipeline([*_kmeans_preprocessor(features, log_features),
                             ("kmeans", _kmeans_estimator(k, rows, random_state))])
        pipeline.fit(frame)
        X = pipeline[:-1].transform(frame)
        labels = pipeline[-1].labels_
        if len(np.unique(labels)) < 2:
            score = -1.0  # degenerate fit (all points on one centre): silhouette undefined
        else:
            score = float(silhouette_score(
                X, labels, sample_size=sample_size if rows > sample_size else None,
                random_state=random_state))
        scores.append({"k": k, "silhouette": score})
        if best is None or score > best[0]:  # ties keep the smaller k: simpler segments
            best = (score, k, pipeline)

    assert best is not None
    silhouette, k, pipeline = best
    model = pipeline[-1]
    labels = _order_clusters(model, numeric)
    profiles = _cluster_profiles(numeric, labels, k)
    params = {
        "k_range": ks, "sample_size": sample_size, "random_state": random_state,
        "algorithm": type(model).__name__, "n_init": model.n_init,
        "log_features": log_features, "order_by": MONETARY if MONETARY in features else "size",
    }
    metrics = {"silhouette": silhouette, "inertia": float(model.inertia_), "k": k}
    return pipeline, _info(
        "kmeans", params, features, rows, started, metrics,
        silhouette_by_k=scores, chosen_k=k,
        cluster_sizes=[p["size"] for p in profiles], clusters=profiles,
    )


# ------------------------------------------------------------------------------- RFM

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


def rfm_tier(r: int, f: int, m: int) -> str:
    """The named tier for one customer's 1..5 scores."""
    return _RFM_GRID[int(r)][(int(f) + int(m)) // 2 - 1]


def _rfm_goodness(frame: pd.DataFrame) -> pd.DataFrame:
    """R, F, M oriented so that larger is better, with gaps filled pessimistically.

    No last order (recency missing) ranks as the longest-gone; no orders or spend
    recorded counts as zero. Recency is negated so one scoring rule serves all three.
    """
    _require_columns(frame, [RECENCY, FREQUENCY, MONETARY])
    numeric = _coerce_frame(frame, [RECENCY, FREQUENCY, MONETARY])
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
    return scorer, _info("rfm", params, [RECENCY, FREQUENCY, MONETARY], len(frame), started, metrics)


# ------------------------------------------------------------------ supervised models


def _tabular_preprocessor(numeric: Sequence[str], categorical: Sequence[str]) -> list[tuple[str, Any]]:
    columns = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), list(numeric)),
        ("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            # ignore: a plan or region first seen after training encodes as all zeros
            # rather than failing a whole segment refresh. Dense output because
            # HistGradientBoosting does not take sparse input.
            ("onehot", OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES,
                                     sparse_output=False)),
        ]), list(categorical)),
    ])
    return [("coerce", _coercer(numeric, categorical)), ("columns", columns)]


def _training_data(frame: pd.DataFrame, target: pd.Series, features: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    _require_columns(frame, features)
    # Align on customer id, not position: the label query may return rows in any order.
    y = target.reindex(frame.index)
    known = y.notna()
    return frame.loc[known, list(features)], y[known]


def _importance(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, scoring: str,
                random_state: int) -> list[dict[str, Any]]:
    # Permuting the raw frame's columns scores each *original* feature (all of a
    # categorical's one-hot columns move together), which is what a marketer can act on.
    result = permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=5, random_state=random_state,
        max_samples=min(1.0, IMPORTANCE_MAX_ROWS / max(len(X), 1)),
    )
    rows = [{"feature": f, "importance": float(m), "std": float(s)}
            for f, m, s in zip(X.columns, result.importances_mean, result.importances_std)]
    return sorted(rows, key=lambda row: -row["importance"])


def _propensity_candidates(random_state: int) -> dict[str, BaseEstimator]:
    return {
        # A well-regularised linear baseline: often as good on RFM-style features, and
        # far easier to explain; the boosted model must beat it to be chosen.
        "logistic_regression": LogisticRegression(max_iter=1000),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=random_state),
    }


def _best_f1_threshold(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    precision, recall, thresholds = precision_recall_curve(y, proba)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def _roc_points(y: np.ndarray, proba: np.ndarray, max_points: int = 100) -> dict[str, list]:
    fpr, tpr, thresholds = roc_curve(y, proba)
    if len(fpr) > max_points:
        # Evenly spaced along the curve's own points, always keeping both ends.
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return {"fpr": fpr, "tpr": tpr, "threshold": thresholds}


def _calibration(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=n_bins, strategy="uniform")
    # Bin sizes let a chart show which points rest on a handful of customers; same
    # uniform bins as calibration_curve, which drops the empty ones.
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], proba), minlength=n_bins)
    return {"prob_pred": prob_pred, "prob_true": prob_true, "count": counts[counts > 0]}


def propensity_train(
    frame: pd.DataFrame,
    target: pd.Series,
    features: Sequence[str],
    random_state: int = 0,
    test_size: float = 0.25,
) -> tuple[Pipeline, dict[str, Any]]:
    """Probability of a yes/no outcome (churn, conversion) from per-customer features.

    Split train/holdout (stratified). On the training split each candidate gets 5-fold
    out-of-fold probabilities: the best ROC AUC picks the model, and the same out-of-fold
    probabilities pick the threshold maximising F1, so neither choice peeks at the holdout.
    The chosen model is refit on the training split and all metrics come from the holdout.
    The returned pipeline is exactly the one measured (it is not refit on all rows).
    """
    started = time.perf_counter()
    features = list(features)
    X, y_raw = _training_data(frame, target, features)
    y = y_raw.astype(bool).astype(int)
    if y.value_counts().reindex([0, 1], fill_value=0).min() < 10:
        # Fewer cannot be split into a stratified holdout and folds with both outcomes.
        raise ValueError("the target needs at least 10 customers with each outcome")
    numeric, categorical = split_feature_types(X, features)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state)

    folds = StratifiedKFold(n_splits=max(2, min(5, int(y_train.value_counts().min()))),
                            shuffle=True, random_state=random_state)
    candidates, oof = [], {}
    for name, estimator in _propensity_candidates(random_state).items():
        pipeline = Pipeline([*_tabular_preprocessor(numeric, categorical), ("model", estimator)])
        oof[name] = cross_val_predict(pipeline, X_train, y_train, cv=folds, method="predict_proba")[:, 1]
        candidates.append({"model": name, "cv_roc_auc": float(roc_auc_score(y_train, oof[name]))})
    chosen = max(candidates, key=lambda c: c["cv_roc_auc"])["model"]
    threshold, cv_f1 = _best_f1_threshold(y_train.to_numpy(), oof[chosen])

    pipeline = Pipeline([*_tabular_preprocessor(numeric, categorical),
                         ("model", _propensity_candidates(random_state)[chosen])])
    pipeline.fit(X_train, y_train)
    proba = pipeline.predict_proba(X_test)[:, 1]
    predicted = (proba >= threshold).astype(int)
    metrics = {
        "roc_auc": roc_auc_score(y_test, proba),
        "precision": precision_score(y_test, predicted, zero_division=0),
        "recall": recall_score(y_test, predicted, zero_division=0),
        "f1": f1_score(y_test, predicted, zero_division=0),
        "brier": brier_score_loss(y_test, proba),
        "threshold": threshold,
        "base_rate": float(y_test.mean()),
        "cv_f1_at_threshold": cv_f1,
    }
    params = {"random_state": random_state, "test_size": test_size, "cv_folds": folds.n_splits,
              "selection": "cross-validated ROC AUC on the training split",
              "model_params": {k: v for k, v in pipeline[-1].get_params().items()
                               if isinstance(v, (int, float, str, bool, type(None)))}}
    return pipeline, _info(
        "propensity", params, features, len(X_train), started, metrics,
        holdout_rows=len(X_test), feature_types={"numeric": numeric, "categorical": categorical},
        model=chosen, candidates=candidates, threshold=threshold,
        threshold_rule="maximises F1 on out-of-fold probabilities over the training split",
        calibration=_calibration(y_test.to_numpy(), proba),
        roc_curve=_roc_points(y_test.to_numpy(), proba),
        feature_importance=_importance(pipeline, X_test, y_test, "roc_auc", random_state),
    )


def propensity_segment_mask(
    scores: pd.Series,
    threshold: float | None = None,
    top_fraction: float | None = None,
) -> pd.Series:
    """Boolean membership: score >= threshold, or the top `top_fraction` of scored customers.

    Exactly one rule must be given. Top-fraction ties are broken by customer id ascending,
    so the same scores always give the same members; missing scores are never members.
    """
    if (threshold is None) == (top_fraction is None):
        raise ValueError("give exactly one of threshold or top_fraction")
    if threshold is not None:
        return (scores >= threshold).fillna(False).astype(bool)
    if not 0 < top_fraction <= 1:
        raise ValueError("top_fraction must be in (0, 1]")
    valid = scores.dropna()
    count = math.ceil(top_fraction * len(valid))
    ranked = valid.sort_index(kind="mergesort").sort_values(ascending=False, kind="mergesort")
    return pd.Series(scores.index.isin(ranked.index[:count]), index=scores.index)


def value_train(
    frame: pd.DataFrame,
    target: pd.Series,
    features: Sequence[str],
    random_state: int = 0,
    test_size: float = 0.25,
) -> tuple[Pipeline, dict[str, Any]]:
    """Expected spend over the next N days (the target the caller computed after a cutoff).

    Spend is non-negative, mostly zero with a long tail: the Poisson loss (log link) fits
    that shape, keeps predictions positive and estimates the mean, which is what a
    revenue forecast sums. Negative targets (refund-heavy data) fall back to squared error.
    Metrics are on the holdout, next to the naive forecast "everyone spends the training mean".
    """
    started = time.perf_counter()
    features = list(features)
    X, y_raw = _training_data(frame, target, features)
    y = pd.to_numeric(y_raw, errors="coerce").astype(float)
    X, y = X[y.notna()], y[y.notna()]
    numeric, categorical = split_feature_types(X, features)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=random_state)
    loss = "poisson" if (y_train >= 0).all() and y_train.sum() > 0 else "squared_error"
    pipeline = Pipeline([*_tabular_preprocessor(numeric, categorical),
                         ("model", HistGradientBoostingRegressor(loss=loss, random_state=random_state))])
    pipeline.fit(X_train, y_train)
    predicted = pipeline.predict(X_test)
    baseline = np.full(len(y_test), y_train.mean())
    metrics = {
        "mae": mean_absolute_error(y_test, predicted),
        "rmse": root_mean_squared_error(y_test, predicted),
        "r2": r2_score(y_test, predicted),
        "baseline_mae": mean_absolute_error(y_test, baseline),
        "baseline_rmse": root_mean_squared_error(y_test, baseline),
        "baseline_r2": r2_score(y_test, baseline),
        "holdout_total_actual": float(y_test.sum()),
        "holdout_total_predicted": float(predicted.sum()),
    }
    metrics["beats_baseline"] = metrics["mae"] < metrics["baseline_mae"] and metrics["rmse"] < metrics["baseline_rmse"]
    params = {"random_state": random_state, "test_size": test_size, "loss": loss,
              "baseline": "training mean"}
    return pipeline, _info(
        "value", params, features, len(X_train), started, metrics,
        holdout_rows=len(X_test), feature_types={"numeric": numeric, "categorical": categorical},
        model="hist_gradient_boosting",
        feature_importance=_importance(pipeline, X_test, y_test, "neg_root_mean_squared_error", random_state),
    )


# -------------------------------------------------------------------------- scoring


def _score_frame(model: Any, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    labels: Any = None
    if kind == "kmeans":
        # Distances to every centre in one pass: the nearest is the label, and its
        # distance says how typical the customer is of the cluster (smaller = more).
        distances = model.transform(frame)
        nearest = distances.argmin(axis=1)
        score = distances[np.arange(len(frame)), nearest]
        labels = [str(label) for label in nearest]
    elif kind == "rfm":
        rfm = model.transform(frame)
        score = (rfm["r"] + rfm["f"] + rfm["m"]).to_numpy()  # 3..15, a simple overall rank
        labels = rfm["tier"].to_list()
    elif kind == "propensity":
        score = model.predict_proba(frame)[:, 1]
    elif kind == "value":
        score = model.predict(frame)
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    out = pd.DataFrame({"score": np.asarray(score, dtype="float64")}, index=frame.index)
    out["label"] = pd.Series(labels if labels is not None else [None] * len(frame),
                             index=frame.index, dtype=object)
    out.index.name = "customer_id"
    return out


def score_chunks(model: Any, frames: Iterable[pd.DataFrame], kind: Kind) -> Iterator[pd.DataFrame]:
    """Score chunk by chunk so memory stays flat on a large base.

    Yields one frame per input chunk: index customer_id, `score` (float) and `label`
    (str or None): kmeans -> cluster number as text, score = distance to its centre;
    rfm (an `RfmScorer`) -> tier, score = R+F+M; propensity -> probability, no label;
    value -> predicted amount, no label. Every row is scored independently of its chunk,
    so the chunking never changes a result. Empty chunks yield nothing.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    for frame in frames:
        if len(frame) == 0:
            continue
        yield _score_frame(model, frame, kind)


# ----------------------------------------------------------------------- versioning


def model_dump(model: Any) -> bytes:
    """Serialise a fitted model for a database blob (joblib, compressed)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def model_load(data: bytes) -> Any:
    """Inverse of `model_dump`. Unpickling runs code: only load blobs this service wrote."""
    return joblib.load(io.BytesIO(data))
