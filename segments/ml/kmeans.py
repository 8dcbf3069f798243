"""Clustering customers with k-means, k chosen by silhouette, clusters named in plain words.
Pure (no Django)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from .common import FREQUENCY, MONETARY, RECENCY, model_info, require_columns
from .preprocessing import coerce_frame, coercer, log1p_nonnegative, split_feature_types

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
# scikit-learn's working_memory (MiB) for the silhouette's pairwise distances.
SILHOUETTE_MEMORY_MIB = 64


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
                              ("log1p", FunctionTransformer(log1p_nonnegative))]), list(log_features)),
            ("linear", SimpleImputer(strategy="median"), linear),
        ]
    )
    # Scaling after the log: k-means is distance-based, so without it the feature with the
    # widest numeric range (spend in cents vs. a 0..30 order count) would decide alone.
    return [("coerce", coercer(features)), ("columns", columns), ("scale", StandardScaler())]


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
    require_columns(frame, features)
    numeric_cols, categorical = split_feature_types(frame, features)
    if categorical:
        # Euclidean distance over one-hot columns is not meaningful for k-means; use
        # propensity/value models (or rule segments) for categorical attributes.
        raise ValueError(f"k-means takes numeric or boolean features only; got {categorical}")
    numeric = coerce_frame(frame, features)
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
            # Its pairwise distances in blocks of 64 MiB: scikit-learn's default of 1 GiB held
            # the whole 10,000 x 10,000 matrix (800 MB), a training's largest allocation.
            with config_context(working_memory=SILHOUETTE_MEMORY_MIB):
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
    return pipeline, model_info(
        "kmeans", params, features, rows, started, metrics,
        silhouette_by_k=scores, chosen_k=k,
        cluster_sizes=[p["size"] for p in profiles], clusters=profiles,
    )
