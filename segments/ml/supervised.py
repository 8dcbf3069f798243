"""What the supervised models share: aligning the target, and permutation importance.
Pure (no Django)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from .common import require_columns

# Permutation importance re-scores the holdout once per feature and repeat; cap the rows.
IMPORTANCE_MAX_ROWS = 20_000


def training_data(frame: pd.DataFrame, target: pd.Series, features: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    require_columns(frame, features)
    # Align on customer id, not position: the label query may return rows in any order.
    y = target.reindex(frame.index)
    known = y.notna()
    return frame.loc[known, list(features)], y[known]


def permutation_importances(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, scoring: str,
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
