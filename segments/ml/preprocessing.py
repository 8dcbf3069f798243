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
MISSING = "(missing)"  # the category of a categorical gap


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


def tabular_preprocessor(numeric: Sequence[str], categorical: Sequence[str], *,
                         scale: bool = True) -> list[tuple[str, Any]]:
    """Pipeline steps from a feature frame to a dense design matrix: every supervised model's
    preprocessing (propensity, value, and the uplift outcome models of experiments).

    Numbers: gaps imputed with the training median; a column with no value at all in
    training is kept (as zeros) so the matrix never silently loses a feature. Categories:
    a gap is its own category "(missing)", because a customer with no plan recorded is not a
    customer on the commonest plan, and the model may learn that absence matters.
    `scale` standardises numbers, which linear models need and tree models ignore.
    """
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    columns = ColumnTransformer([
        ("numeric", Pipeline(numeric_steps), list(numeric)),
        ("categorical", Pipeline([
            # keep_empty_features: an attribute no training customer has (Hillstrom's columns
            # when training on the demo customers) is then one "(missing)" column, as the
            # numbers keep theirs. Without it the imputer drops the column and warns on every
            # fit and transform: about 150 UserWarnings per propensity training.
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True)),
            # A value first seen after training joins the infrequent column (or, without one,
            # encodes as all zeros) rather than failing a whole segment refresh. Dense output
            # because HistGradientBoosting does not take sparse input.
            ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
                                     sparse_output=False)),
        ]), list(categorical)),
    ])
    return [("coerce", coercer(numeric, categorical)), ("columns", columns)]
