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
