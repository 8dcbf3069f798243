"""Propensity: the probability of a yes/no outcome (churn, conversion). Pure (no Django)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    brier_score_loss, f1_score, precision_recall_curve, precision_score, recall_score, roc_auc_score, roc_curve,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline

from .common import model_info
from .guard import feature_target_association, score_spread
from .preprocessing import split_feature_types, tabular_preprocessor
from .supervised import permutation_importances, training_data

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
    X, y_raw = training_data(frame, target, features)
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
        pipeline = Pipeline([*tabular_preprocessor(numeric, categorical), ("model", estimator)])
        oof[name] = cross_val_predict(pipeline, X_train, y_train, cv=folds, method="predict_proba")[:, 1]
        candidates.append({"model": name, "cv_roc_auc": float(roc_auc_score(y_train, oof[name]))})
    chosen = max(candidates, key=lambda c: c["cv_roc_auc"])["model"]
    threshold, cv_f1 = _best_f1_threshold(y_train.to_numpy(), oof[chosen])

    pipeline = Pipeline([*tabular_preprocessor(numeric, categorical),
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
    return pipeline, model_info(
        "propensity", params, features, len(X_train), started, metrics,
        holdout_rows=len(X_test), feature_types={"numeric": numeric, "categorical": categorical},
        model=chosen, candidates=candidates, threshold=threshold,
        threshold_rule="maximises F1 on out-of-fold probabilities over the training split",
        calibration=_calibration(y_test.to_numpy(), proba),
        roc_curve=_roc_points(y_test.to_numpy(), proba),
        # For segments.ml.guard: one score for everyone, or a feature that is the target.
        score_spread=score_spread(proba),
        target_association=feature_target_association(X_train, y_train, features),
        feature_importance=permutation_importances(pipeline, X_test, y_test, "roc_auc", random_state),
    )
