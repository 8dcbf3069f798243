"""Value: expected spend over the next N days. Pure (no Django)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from .common import model_info
from .guard import feature_target_association, score_spread
from .preprocessing import split_feature_types, tabular_preprocessor
from .supervised import permutation_importances, training_data


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
    X, y_raw = training_data(frame, target, features)
    y = pd.to_numeric(y_raw, errors="coerce").astype(float)
    X, y = X[y.notna()], y[y.notna()]
    numeric, categorical = split_feature_types(X, features)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=random_state)
    loss = "poisson" if (y_train >= 0).all() and y_train.sum() > 0 else "squared_error"
    pipeline = Pipeline([*tabular_preprocessor(numeric, categorical),
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
    return pipeline, model_info(
        "value", params, features, len(X_train), started, metrics,
        holdout_rows=len(X_test), feature_types={"numeric": numeric, "categorical": categorical},
        model="hist_gradient_boosting",
        # For segments.ml.guard: one score for everyone, or a feature that is the target.
        score_spread=score_spread(predicted),
        target_association=feature_target_association(X_train, y_train, features),
        feature_importance=permutation_importances(pipeline, X_test, y_test, "neg_root_mean_squared_error", random_state),
    )
