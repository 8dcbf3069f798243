"""segments/ml/propensity.py: planted churn drivers recovered on the holdout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segments.ml.propensity import propensity_train

from .planted import churn_data, score_all

def test_propensity_separates_churners_well_on_the_holdout(propensity):
    _, _, _, info = propensity
    assert info["metrics"]["roc_auc"] >= 0.75
    assert info["model"] in {"logistic_regression", "hist_gradient_boosting"}
    assert {c["model"] for c in info["candidates"]} == {"logistic_regression", "hist_gradient_boosting"}
    assert 0 < info["threshold"] < 1
    for metric in ("precision", "recall", "f1", "brier"):
        assert 0 <= info["metrics"][metric] <= 1


def test_propensity_ranks_the_planted_drivers_above_noise(propensity):
    _, _, _, info = propensity
    importance = {row["feature"]: row["importance"] for row in info["feature_importance"]}
    assert set(importance) == {"recency_days", "events_support_ticket_90d", "noise", "plan", "has_app"}
    for driver in ("recency_days", "events_support_ticket_90d"):
        assert importance[driver] > importance["noise"]
        assert importance[driver] > importance["plan"]
    assert [row["feature"] for row in info["feature_importance"][:2]] in (
        ["recency_days", "events_support_ticket_90d"], ["events_support_ticket_90d", "recency_days"])


def test_propensity_chart_data_is_bounded_and_json_ready(propensity):
    _, _, _, info = propensity
    assert len(info["roc_curve"]["fpr"]) <= 100
    assert info["roc_curve"]["fpr"][0] == 0 and info["roc_curve"]["tpr"][-1] == 1
    calibration = info["calibration"]
    assert len(calibration["prob_pred"]) == len(calibration["prob_true"]) == len(calibration["count"]) <= 10
    assert sum(calibration["count"]) == info["holdout_rows"]
    for key in ("params", "features", "training_rows", "seconds", "metrics"):
        assert key in info
    json.dumps(info)


def test_propensity_scores_unseen_categories_and_missing_values(propensity):
    frame, _, pipeline, _ = propensity
    new = frame.head(4).copy()
    new["plan"] = ["enterprise", None, "basic", "never-seen"]
    new["has_app"] = [True, None, False, True]
    new.loc[new.index[0], "recency_days"] = np.nan
    scores = score_all(pipeline, new, "propensity")
    assert scores["score"].between(0, 1).all()
    assert scores["label"].isna().all()


def test_propensity_refuses_a_target_with_too_few_of_one_outcome():
    frame, churned = churn_data(n=300)
    churned[:] = False
    churned.iloc[:3] = True
    with pytest.raises(ValueError, match="each outcome"):
        propensity_train(frame, churned, ["recency_days"])
