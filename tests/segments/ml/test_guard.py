"""segments/ml/guard.py: no signal, a likely leak and ties said in words before a segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from experiments.uplift import frame_from_records, uplift_train
from segments.ml.guard import (
    feature_target_association, model_concerns, propensity_concerns, rank_cut, score_spread, uplift_concerns,
)
from segments.ml.propensity import propensity_train
from tests.conftest import HILLSTROM

from .planted import churn_data


def test_association_is_the_absolute_spearman_correlation_scipy_computes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    y = (x + rng.normal(size=500) > 0).astype(float)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=500)})
    rows = {r["feature"]: r["association"] for r in feature_target_association(frame, y)}
    assert rows["x"] == pytest.approx(abs(spearmanr(x, y).statistic), abs=1e-4)
    assert rows["noise"] < 0.15


def test_spend_that_exists_only_for_converters_is_found_to_be_the_target():
    rng = np.random.default_rng(2)
    converted = rng.random(2000) < 0.1
    spend = np.where(converted, rng.gamma(2, 40, 2000), 0.0)  # recorded with the conversion itself
    frame = pd.DataFrame({"spend": spend, "age": rng.integers(18, 80, 2000)})
    top = feature_target_association(frame, converted.astype(float))[0]
    assert top["feature"] == "spend" and top["association"] >= 0.95


def test_a_text_feature_leaks_through_one_of_its_values():
    y = np.array([1, 0, 0, 1, 0, 1, 0, 0] * 50, dtype=float)
    status = np.where(y == 1, "cancelled", np.array(["active", "paused"] * 200))
    top = feature_target_association(pd.DataFrame({"status": status}), y)[0]
    assert top == {"feature": "status = cancelled", "association": 1.0}


def test_a_propensity_model_trained_with_the_answer_among_its_features_is_called_a_likely_leak():
    frame, churned = churn_data()
    frame = frame.assign(cancelled=churned.astype(bool))
    _, info = propensity_train(frame, churned, ["recency_days", "noise", "cancelled"], random_state=0)
    concerns = model_concerns("propensity", info["metrics"], info)
    assert [c.code for c in concerns] == ["leakage"]
    assert "cancelled" in concerns[0].message and "Train without it" in concerns[0].message


def test_a_propensity_model_of_noise_is_called_no_signal(propensity):
    frame, churned, _, _ = propensity
    rng = np.random.default_rng(3)
    noise = pd.Series(rng.random(len(churned)) < churned.mean(), index=churned.index)
    _, info = propensity_train(frame, noise, ["noise", "plan"], random_state=0)
    concerns = model_concerns("propensity", info["metrics"], info)
    assert [c.code for c in concerns] == ["no_signal"]
    assert "coin flip" in concerns[0].message


def test_the_planted_churn_model_raises_no_concern(propensity):
    _, _, _, info = propensity
    assert model_concerns("propensity", info["metrics"], info) == []


def test_an_auc_too_good_to_be_true_is_a_likely_leak_even_without_a_named_feature():
    concerns = propensity_concerns({"roc_auc": 0.997}, {"target_association": [{"feature": "x", "association": 0.6}]})
    assert [c.code for c in concerns] == ["leakage"] and "0.997" in concerns[0].message


def test_an_uplift_model_that_scores_everyone_the_same_says_so_rather_than_no_signal():
    info = {"qini_coefficient": 0.00002, "score_spread": score_spread([0.008216] * 100)}
    concerns = uplift_concerns(info)
    assert [c.code for c in concerns] == ["constant_scores"]
    assert "0.008216" in concerns[0].message and "arbitrary" in concerns[0].message


def test_an_uplift_model_that_does_not_beat_random_says_treat_everyone_or_no_one():
    concerns = uplift_concerns({"qini_coefficient": -0.0004, "score_spread": {"distinct": 900, "min": -0.1, "max": 0.2}})
    assert [c.code for c in concerns] == ["no_signal"] and "Treat everyone or no one" in concerns[0].message
    assert uplift_concerns({"qini_coefficient": 0.004, "score_spread": {"distinct": 900, "min": -0.1, "max": 0.2}}) == []


def test_older_uplift_models_without_a_spread_read_constant_scores_from_their_deciles():
    info = {"qini_coefficient": 0.0, "deciles": [{"predicted_uplift": 0.008216} for _ in range(10)]}
    assert [c.code for c in uplift_concerns(info)] == ["constant_scores"]


def test_rank_cut_finds_a_tie_across_the_line_and_what_taking_it_all_means():
    scores = [0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.2, 0.1, 0.1, 0.0]
    cut = rank_cut(scores, 0.3)  # 3 asked for: 0.9, 0.8 and one of four 0.5s
    assert (cut.size, cut.cut_score, cut.above, cut.tied, cut.with_ties) == (3, 0.5, 2, 4, 6)
    assert cut.splits_a_tie
    assert "4 customers share the score 0.5 and only 1 of them fit" in cut.words(0.3)
    assert not rank_cut(scores, 0.2).splits_a_tie  # ends between 0.8 and 0.5
    assert not rank_cut(scores, 0.6).splits_a_tie  # takes all four 0.5s


def test_rank_cut_on_equal_scores_says_all_are_equal():
    cut = rank_cut([0.008216] * 64, 0.2)
    assert cut.splits_a_tie and cut.with_ties == 64
    assert cut.words(0.2, "predicted uplift").startswith("All 64 customers have the same predicted uplift (0.008216)")


def _noise(p: float, permutations: int = 234) -> dict:
    return {"p_value": p, "permutations": permutations, "alpha": 0.05, "null_95": 0.00077}


def test_a_positive_qini_that_chance_reaches_is_no_signal_in_words():
    spread = {"distinct": 900, "min": -0.1, "max": 0.2}
    concerns = uplift_concerns({"qini_coefficient": 0.00027, "qini_null": _noise(0.2894), "score_spread": spread})
    assert [c.code for c in concerns] == ["no_signal"]
    message = concerns[0].message
    assert message.startswith("No signal beyond noise: on held-out units the Qini coefficient is 0.00027, above 0")
    assert "in 29% of 234 shuffles (p = 0.2894; more than luck would need p below 0.05)" in message
    assert "Treat everyone or no one" in message


def test_a_positive_qini_beyond_chance_raises_no_concern_and_old_models_are_judged_by_its_sign():
    spread = {"distinct": 900, "min": -0.1, "max": 0.2}
    assert uplift_concerns({"qini_coefficient": 0.00027, "qini_null": _noise(0.02), "score_spread": spread}) == []
    assert uplift_concerns({"qini_coefficient": 0.00027, "score_spread": spread}) == []  # trained before the test


def _planted_uplift(n=8000, seed=1):
    """The treatment raises conversion by 20 points for responsive units only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"responsive": (rng.random(n) < 0.3).astype(float), "age": rng.uniform(20, 70, n)})
    treated = (rng.random(n) < 0.5).astype(int)
    converted = (rng.random(n) < 0.05 + 0.2 * treated * frame["responsive"].to_numpy()).astype(float)
    return frame, treated, converted


def test_the_planted_uplift_model_passes_and_the_same_data_with_shuffled_treatment_is_flagged():
    frame, treated, converted = _planted_uplift()
    _, planted_info, _ = uplift_train(frame, treated, converted, learner="gbm", folds=3)
    assert uplift_concerns(planted_info) == []

    # The shuffle breaks any link between treatment and outcome. This shuffle's model still
    # comes out above 0 (half come out below, which the sign alone catches): only the test says noise.
    shuffled = np.random.default_rng(0).permutation(treated)
    _, info, _ = uplift_train(frame, shuffled, converted, learner="gbm", folds=3)
    assert info["qini_coefficient"] > 0
    concerns = uplift_concerns(info)
    assert [c.code for c in concerns] == ["no_signal"] and "beyond noise" in concerns[0].message


@pytest.mark.skipif(not HILLSTROM.exists(), reason="../shared/datasets/hillstrom.csv is not here")
def test_hillstrom_mens_email_on_visits_has_a_positive_qini_that_chance_reaches():
    data = pd.read_csv(HILLSTROM)
    data = data[data["segment"].isin(["Mens E-Mail", "No E-Mail"])].reset_index(drop=True)
    features = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
    frame = frame_from_records(data[features].to_dict("records"), features)
    treated = (data["segment"] == "Mens E-Mail").astype(int).to_numpy()
    _, info, _ = uplift_train(frame, treated, data["visit"].to_numpy(float), learner="gbm", folds=5)
    assert info["qini_coefficient"] > 0 and info["qini_p_value"] > 0.05
    assert [c.code for c in uplift_concerns(info)] == ["no_signal"]
