"""experiments/uplift.py: T-learner, cross-fitting and the Qini evaluation (no database)."""

import numpy as np
import pandas as pd
import pytest

from experiments import uplift


def planted(n=8000, seed=1, effect=0.2):
    """The treatment raises conversion by ``effect`` for responsive units only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"responsive": (rng.random(n) < 0.3).astype(float), "age": rng.uniform(20, 70, n),
                          "channel": rng.choice(["web", "phone"], n).astype(object)})
    treated = (rng.random(n) < 0.5).astype(int)
    p = 0.05 + effect * treated * frame["responsive"].to_numpy()
    return frame, treated, (rng.random(n) < p).astype(float)


def test_qini_curve_runs_from_zero_to_the_total_gain_and_random_is_a_line():
    frame, treated, y = planted()
    curve = uplift.qini_curve(np.zeros(len(y)), treated, y)
    assert curve["model"][0] == 0 and curve["model"][-1] == pytest.approx(curve["random"][-1])
    assert np.allclose(np.diff(curve["random"]), np.diff(curve["random"])[0])


def test_a_perfect_score_beats_random_and_a_constant_score_does_not():
    frame, treated, y = planted()
    oracle = uplift.qini_curve(frame["responsive"].to_numpy(), treated, y)
    constant = uplift.qini_curve(np.zeros(len(y)), treated, y)
    assert oracle["qini_coefficient"] > 0.005
    assert abs(constant["qini_coefficient"]) < 0.002


def test_trained_model_finds_the_planted_responsive_units_on_held_out_data():
    frame, treated, y = planted()
    model, info, held_out = uplift.uplift_train(frame, treated, y, learner="gbm", folds=3)
    assert info["qini_coefficient"] > 0.005
    top, bottom = info["deciles"][0], info["deciles"][-1]
    assert top["beats_random"] and top["cumulative_beats_random"]
    assert not bottom["beats_random"]
    assert held_out.shape == (len(y),)
    assert len(info["qini"]["fraction"]) == uplift.CURVE_POINTS


def test_without_a_real_effect_the_model_does_not_claim_one():
    frame, treated, y = planted(effect=0.0)
    _, info, _ = uplift.uplift_train(frame, treated, y, learner="logistic", folds=3)
    assert abs(info["qini_coefficient"]) < 0.004


def test_a_stored_model_predicts_the_same_after_loading():
    frame, treated, y = planted(n=2000)
    model, _, _ = uplift.uplift_train(frame, treated, y, learner="logistic", folds=3)
    again = uplift.model_load(uplift.model_dump(model))
    assert np.allclose(again.predict(frame), model.predict(frame))


def test_unseen_categories_and_missing_columns_still_score():
    frame, treated, y = planted(n=2000)
    model, _, _ = uplift.uplift_train(frame, treated, y, learner="gbm", folds=3)
    new = pd.DataFrame({"responsive": [1.0, None], "channel": ["fax", None]})
    assert np.isfinite(model.predict(new)).all()


def test_frame_from_records_types_booleans_numbers_and_text():
    frame = uplift.frame_from_records([{"a": True, "b": 3, "c": "x"}, {"a": False, "c": None}], ["a", "b", "c"])
    assert frame["a"].tolist() == [1.0, 0.0]
    assert frame["b"].iloc[0] == 3.0 and np.isnan(frame["b"].iloc[1])
    assert frame["c"].tolist() == ["x", None]


def test_top_fraction_picks_the_best_scores_first():
    assert uplift.top_fraction(np.array([0.1, 0.9, 0.5, 0.7]), 0.5).tolist() == [1, 3]


# --------------------------------------------------------------------------- is the Qini more than noise


def test_qini_area_in_order_is_the_qini_curve_coefficient_of_that_order():
    frame, treated, y = planted(n=3000)
    order = np.random.default_rng(4).permutation(len(y))
    scores = np.empty(len(y))
    scores[order] = -np.arange(len(y), dtype=float)  # best first = the order above
    area = uplift._qini_area_in_order(treated.astype(bool)[order], y[order])
    assert area == pytest.approx(uplift.qini_curve(scores, treated, y)["qini_coefficient"], abs=1e-15)


def test_qini_null_agrees_with_qini_curve_over_treatment_labels_shuffled_one_by_one():
    # Independent: shuffle the labels in the units' own order and ask qini_curve each time.
    frame, treated, y = planted(n=3000, effect=0.03)
    scores = frame["responsive"].to_numpy() + np.random.default_rng(7).normal(0, 1.0, len(y))
    null = uplift.qini_null(scores, treated, y, permutations=400, seed=1)
    observed = uplift.qini_curve(scores, treated, y)["qini_coefficient"]
    rng = np.random.default_rng(11)
    loop = np.array([uplift.qini_curve(scores, rng.permutation(treated), y)["qini_coefficient"] for _ in range(400)])
    p_loop = (1 + (loop >= observed).sum()) / 401
    assert null["observed"] == pytest.approx(observed, abs=1e-15)
    assert 0.02 < null["p_value"] < 0.98  # a weak signal: neither end, so the comparison means something
    assert null["p_value"] == pytest.approx(p_loop, abs=0.08)  # two Monte Carlo estimates of one p
    assert null["null_sd"] == pytest.approx(loop.std(ddof=1), rel=0.2)
    assert abs(null["null_mean"]) < 3 * null["null_sd"] / np.sqrt(400) + abs(loop.mean()) + 1e-4


def test_a_perfect_ranking_gets_the_smallest_p_value_its_shuffles_allow():
    frame, treated, y = planted()
    null = uplift.qini_null(frame["responsive"].to_numpy(), treated, y, permutations=199)
    assert null["p_value"] == pytest.approx(1 / 200)


def test_a_score_that_knows_nothing_is_within_noise():
    frame, treated, y = planted()
    null = uplift.qini_null(np.random.default_rng(2).random(len(y)), treated, y)
    assert null["p_value"] > 0.05 and null["permutations"] == 999


def test_shuffles_are_many_on_small_tests_and_fewer_but_enough_on_large_ones():
    assert uplift.qini_permutations(8_000) == 999
    assert uplift.qini_permutations(42_613) == 234
    assert uplift.qini_permutations(5_000_000) == 199


def test_uplift_train_stores_the_qini_test_with_the_coefficient():
    frame, treated, y = planted()
    _, info, _ = uplift.uplift_train(frame, treated, y, learner="logistic", folds=3)
    assert info["qini_null"]["observed"] == pytest.approx(info["qini_coefficient"], abs=1e-15)
    assert info["qini_p_value"] == info["qini_null"]["p_value"] < 0.01
