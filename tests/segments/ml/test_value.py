"""segments/ml/value.py: a planted spend process beats the naive forecast."""

from __future__ import annotations

import json


def test_value_model_beats_the_naive_mean_forecast(value):
    _, _, _, info = value
    metrics = info["metrics"]
    assert metrics["mae"] < 0.9 * metrics["baseline_mae"]
    assert metrics["rmse"] < metrics["baseline_rmse"]
    assert metrics["r2"] > 0.2 and metrics["beats_baseline"] is True
    ranked = [row["feature"] for row in info["feature_importance"]]
    assert ranked.index("tenure_days") > min(ranked.index("recency_days"), ranked.index("monetary"))
    json.dumps(info)
