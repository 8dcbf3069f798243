"""segments/ml/preprocessing.py: the one preprocessing of the supervised models."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from segments.ml.preprocessing import MISSING, split_feature_types, tabular_preprocessor


def fitted(frame: pd.DataFrame, scale: bool = True) -> Pipeline:
    numeric, categorical = split_feature_types(frame, list(frame.columns))
    return Pipeline(tabular_preprocessor(numeric, categorical, scale=scale)).fit(frame)


def test_booleans_count_as_numbers_and_text_as_categories():
    frame = pd.DataFrame({"spend": [1.0, 2.0], "vip": pd.Series([True, None], dtype=object), "plan": ["a", "b"]})
    assert split_feature_types(frame, ["spend", "vip", "plan"]) == (["spend", "vip"], ["plan"])


def test_a_numeric_gap_takes_the_median_and_a_categorical_gap_is_its_own_category():
    frame = pd.DataFrame({"spend": [1.0, np.nan, 3.0, 10.0], "plan": ["a", None, "a", "b"]})
    pipeline = fitted(frame, scale=False)
    out = pipeline.transform(frame)
    assert out[1, 0] == 3.0  # the median of 1, 3, 10
    encoder = pipeline[-1].named_transformers_["categorical"][-1]
    assert MISSING in list(encoder.categories_[0])
    assert out.shape == (4, 1 + 3)  # spend, then a / b / (missing)


def test_an_unseen_category_and_an_empty_column_do_not_fail_scoring():
    frame = pd.DataFrame({"spend": [1.0, 2.0, 3.0], "empty": [np.nan] * 3, "plan": ["a", "b", "a"]})
    pipeline = fitted(frame)
    out = pipeline.transform(pd.DataFrame({"spend": [5.0], "empty": [np.nan], "plan": ["never seen"]}))
    assert out.shape == (1, 2 + 2)  # the empty column is kept; the unseen plan encodes as zeros
    assert np.isfinite(out).all()


def test_a_column_no_training_row_has_is_kept_without_a_warning():
    import warnings

    frame = pd.DataFrame({"spend": [1.0, 2.0, 3.0], "score": [np.nan] * 3,
                          "region": pd.Series([None] * 3, dtype=object), "plan": ["a", "b", "a"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn warned on every fit and transform of an empty column
        pipeline = Pipeline(tabular_preprocessor(["spend", "score"], ["region", "plan"])).fit(frame)
        out = pipeline.transform(frame)
    assert out.shape == (3, 2 + 1 + 2)  # spend, score; region's (missing); plan's a / b
