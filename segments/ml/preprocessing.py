"""Feature frames into model input: column types, one dtype per column, imputation, encoding.
Pure (no Django).

The one preprocessing every supervised model here uses (propensity, value, and the uplift
models of experiments), so a feature is read the same way whichever model reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from .common import require_columns

# One-hot columns per categorical attribute; rarer values share one "infrequent" column
# so a free-text-like attribute cannot blow up the width of the design matrix.
MAX_CATEGORIES = 30


def is_boolean_like(series: pd.Series) -> bool:
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
        if is_boolean_like(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(column)
        else:
            categorical.append(column)
    return numeric, categorical


def coerce_frame(frame: pd.DataFrame, numeric: Sequence[str] = (),
                  categorical: Sequence[str] = ()) -> pd.DataFrame:
    """Select the model's columns with one dtype each, so every later step sees the same shape.

    Chunks read from the database disagree on dtypes (a boolean column with a gap arrives
    as object, an all-empty chunk as float), so the pipeline normalises them itself
    instead of trusting the caller.
    """
    require_columns(frame, [*numeric, *categorical])
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        out[column] = values.replace([np.inf, -np.inf], np.nan)
    for column in categorical:
        values = frame[column].astype(object)
        # str() so 1 and "1" are one category; None/pd.NA become NaN, which the imputer knows.
        out[column] = values.map(str).where(values.notna(), np.nan)
    return out


def coercer(numeric: Sequence[str], categorical: Sequence[str] = ()) -> FunctionTransformer:
    return FunctionTransformer(
        coerce_frame, kw_args={"numeric": list(numeric), "categorical": list(categorical)}
    )


def log1p_nonnegative(values: np.ndarray) -> np.ndarray:
    # Clip first: a negative value at scoring time (bad import, refund) must not become NaN.
    return np.log1p(np.clip(values, 0.0, None))


def tabular_preprocessor(numeric: Sequence[str], categorical: Sequence[str]) -> list[tuple[str, Any]]:
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
    return [("coerce", coercer(numeric, categorical)), ("columns", columns)]
