"""segments/ml.py against planted ground truth.

Every data set is generated here with a seeded RNG and a known structure (planted
clusters, known churn drivers, a known spend process), and the models are judged
against that structure, never against their own output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segments import ml

REPO = Path(__file__).resolve().parents[2]

# Planted groups: median recency (days), orders and spend, as a marketer would sketch them.
PLANTED = {
    "champions": (4, 40, 6000),
    "regulars": (25, 12, 900),
    "lapsed big spenders": (300, 15, 2500),
    "new": (8, 2, 60),
    "dormant": (500, 1.5, 25),
}
RFM = ["recency_days", "frequency", "monetary"]


def planted_clusters(n_per_group: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for group, (recency, orders, spend) in enumerate(PLANTED.values()):
        # Log-normal spread: realistic heavy tails, groups well apart on the log scale.
        rows.append(pd.DataFrame({
            "recency_days": np.round(rng.lognormal(np.log(recency), 0.25, n_per_group)),
            "frequency": np.maximum(1, np.round(rng.lognormal(np.log(orders), 0.25, n_per_group))),
            "monetary": np.round(rng.lognormal(np.log(spend), 0.25, n_per_group), 2),
        }))
        truth.append(np.full(n_per_group, group))
    frame = pd.concat(rows, ignore_index=True)
    frame.index = pd.Index(10_000 + np.arange(len(frame)), name="customer_id")
    return frame, np.concatenate(truth)


def churn_data(n: int = 4000, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Churn driven by recency and support tickets only; the rest is noise."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    tickets = rng.poisson(1.0, n)
    logit = -3.2 + 0.03 * recency + 0.9 * tickets
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    has_app = pd.Series(rng.random(n) < 0.5, dtype=object)
    has_app[rng.random(n) < 0.05] = None  # boolean attribute with gaps arrives as object
    frame = pd.DataFrame({
        "recency_days": recency,
        "events_support_ticket_90d": tickets,
        "noise": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "has_app": has_app.to_numpy(),
    }, index=pd.Index(np.arange(n) * 7 + 3, name="customer_id"))
    # Gaps in a numeric driver and in a categorical attribute must be imputed, not fatal.
    frame.loc[rng.random(n) < 0.05, "recency_days"] = np.nan
    frame.loc[rng.random(n) < 0.05, "plan"] = None
    return frame, pd.Series(churned, index=frame.index)


def spend_data(n: int = 3000, seed: int = 2) -> tuple[pd.DataFrame, pd.Series]:
    """Next-90-day spend: frequent, recent customers with a big basket spend more."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(4, n) + 1
    basket = rng.lognormal(np.log(50), 0.5, n)
    recency = rng.exponential(60, n)
    active = rng.random(n) < np.exp(-recency / 90)
    expected = frequency * basket * 0.4
    spend = np.where(active, rng.gamma(4.0, expected / 4.0), 0.0)
    frame = pd.DataFrame({
        "recency_days": recency,
        "frequency": frequency,
        "monetary": frequency * basket,
        "tenure_days": rng.uniform(30, 900, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    }, index=pd.Index(np.arange(n), name="customer_id"))
    return frame, pd.Series(spend, index=frame.index)


@pytest.fixture(scope="module")
def clusters():
    frame, truth = planted_clusters()
    pipeline, info = ml.kmeans_train(frame, RFM, random_state=0)
    return frame, truth, pipeline, info


@pytest.fixture(scope="module")
def propensity():
    frame, churned = churn_data()
    features = ["recency_days", "events_support_ticket_90d", "noise", "plan", "has_app"]
    pipeline, info = ml.propensity_train(frame, churned, features, random_state=0)
    return frame, churned, pipeline, info


@pytest.fixture(scope="module")
def value():
    frame, spend = spend_data()
    features = ["recency_days", "frequency", "monetary", "tenure_days", "region"]
    pipeline, info = ml.value_train(frame, spend, features, random_state=0)
    return frame, spend, pipeline, info


def chunks(frame: pd.DataFrame, n: int = 3) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), n + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def score_all(model, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    return pd.concat(list(ml.score_chunks(model, [frame], kind)))


# --------------------------------------------------------------------- clustering


def test_kmeans_picks_the_planted_number_of_clusters(clusters):
    _, _, _, info = clusters
    assert info["chosen_k"] == len(PLANTED)
    by_k = {row["k"]: row["silhouette"] for row in info["silhouette_by_k"]}
    assert sorted(by_k) == list(range(2, 9))
    assert max(by_k, key=by_k.get) == len(PLANTED)


def test_kmeans_recovers_planted_clusters(clusters):
    frame, truth, pipeline, _ = clusters
    predicted = pipeline.predict(frame)
    assert adjusted_rand_score(truth, predicted) >= 0.8


def test_kmeans_labels_are_ordered_by_spend_and_stable_across_retrains(clusters):
    frame, truth, pipeline, info = clusters
    means = [c["means"]["monetary"] for c in info["clusters"]]
    assert means == sorted(means, reverse=True)
    # The planted champions spend most, so they must be cluster 0.
    champions = pipeline.predict(frame)[truth == 0]
    assert np.bincount(champions).argmax() == 0
    # Same customers in another row order: every customer keeps its label number.
    shuffled = frame.sample(frac=1.0, random_state=7)
    retrained, _ = ml.kmeans_train(shuffled, RFM, k_range=[5], random_state=3)
    assert (retrained.predict(frame) == pipeline.predict(frame)).mean() >= 0.99


def test_kmeans_profiles_describe_planted_groups_in_plain_words(clusters):
    frame, truth, pipeline, info = clusters
    predicted = pipeline.predict(frame)
    profile = {c["label"]: c for c in info["clusters"]}
    champions = profile[np.bincount(predicted[truth == 0]).argmax()]
    dormant = profile[np.bincount(predicted[truth == 4]).argmax()]
    for word in ("recent", "frequent", "high-spending"):
        assert word in champions["description"]
    assert champions["name"] == "Champions"
    assert "lapsed" in dormant["description"] and "low-spending" in dormant["description"]
    assert sum(info["cluster_sizes"]) == len(frame)
    assert len({c["name"] for c in info["clusters"]}) == len(info["clusters"])


def test_kmeans_log_transforms_the_heavy_tailed_rfm_features(clusters):
    _, _, _, info = clusters
    assert set(info["params"]["log_features"]) == set(RFM)


def test_kmeans_switches_to_minibatch_on_large_bases_and_still_recovers_clusters(monkeypatch):
    frame, truth = planted_clusters(n_per_group=300, seed=5)
    monkeypatch.setattr(ml, "MINIBATCH_ROWS", 1000)
    pipeline, info = ml.kmeans_train(frame, RFM, k_range=range(3, 8), sample_size=800)
    assert info["params"]["algorithm"] == "MiniBatchKMeans"
    assert info["chosen_k"] == len(PLANTED)
    assert adjusted_rand_score(truth, pipeline.predict(frame)) >= 0.8


def test_kmeans_scores_rows_with_gaps_and_out_of_range_values(clusters):
    _, _, pipeline, _ = clusters
    odd = pd.DataFrame({
        "recency_days": [np.nan, 3.0, 10.0],
        "frequency": [5.0, None, 1.0],
        "monetary": [100.0, 50.0, -20.0],  # a refund-driven negative total
    }, index=pd.Index([1, 2, 3], name="customer_id"))
    scored = score_all(pipeline, odd, "kmeans")
    assert np.isfinite(scored["score"]).all()
    assert set(scored["label"]) <= {str(k) for k in range(len(PLANTED))}


def test_kmeans_rejects_categorical_features():
    frame, _ = planted_clusters(n_per_group=20)
    frame["plan"] = "basic"
    with pytest.raises(ValueError, match="numeric"):
        ml.kmeans_train(frame, [*RFM, "plan"])


# --------------------------------------------------------------------------- RFM


def rfm_population(n: int = 500, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "recency_days": rng.integers(1, 365, n).astype(float),
        # Heavy ties on purpose: most customers ordered once or twice.
        "frequency": rng.choice([1, 1, 1, 2, 2, 3, 5, 8], n).astype(float),
        "monetary": np.round(rng.lognormal(4, 1, n), 2),
    }, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))
    hand_made = pd.DataFrame({
        "recency_days": [0.0, 5000.0, 0.0, 4000.0, np.nan],
        "frequency": [1000.0, 0.0, 0.0, 900.0, np.nan],
        "monetary": [1e6, 0.0, 0.0, 9e5, np.nan],
    }, index=pd.Index(["best", "worst", "brand_new", "big_but_gone", "no_orders"], name="customer_id"))
    return pd.concat([frame, hand_made])


def test_rfm_scores_are_quintiles_from_1_to_5_despite_ties():
    scores = ml.rfm_scores(rfm_population())
    for column in ("r", "f", "m"):
        assert set(scores[column]) == {1, 2, 3, 4, 5}
        counts = scores[column].value_counts()
        assert counts.max() - counts.min() <= 1  # rank(method="first"): equal fifths
    assert set(scores["tier"]) <= set(ml.RFM_TIERS)


def test_rfm_fewer_days_since_last_order_scores_higher():
    population = rfm_population()
    scores = ml.rfm_scores(population)
    known = population["recency_days"].notna()
    by_recency = scores.loc[known, "r"][population.loc[known, "recency_days"].sort_values().index]
    assert by_recency.is_monotonic_decreasing


def test_rfm_best_customer_is_champion_and_worst_is_lost():
    scores = ml.rfm_scores(rfm_population())
    assert scores.loc["best", ["r", "f", "m"]].tolist() == [5, 5, 5]
    assert scores.loc["best", "tier"] == "Champions"
    assert scores.loc["worst", ["r", "f", "m"]].tolist() == [1, 1, 1]
    assert scores.loc["worst", "tier"] == "Lost"
    assert scores.loc["brand_new", "tier"] == "New customers"
    assert scores.loc["big_but_gone", "tier"] == "Cannot lose them"
    assert scores.loc["no_orders", "tier"] == "Lost"  # no order at all: the worst scores


def test_rfm_scorer_gives_the_same_extremes_and_info():
    population = rfm_population()
    scorer, info = ml.rfm_train(population)
    tiers = scorer.transform(population)["tier"]
    assert tiers["best"] == "Champions" and tiers["worst"] == "Lost"
    assert sum(info["metrics"]["tier_counts"].values()) == len(population)
    json.dumps(info)


# --------------------------------------------------------------------- propensity


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
        ml.propensity_train(frame, churned, ["recency_days"])


def test_propensity_segment_mask_by_threshold_and_top_fraction():
    scores = pd.Series([0.9, 0.1, 0.5, 0.5, np.nan], index=[5, 4, 3, 2, 1])
    assert ml.propensity_segment_mask(scores, threshold=0.5).tolist() == [True, False, True, True, False]
    top = ml.propensity_segment_mask(scores, top_fraction=0.5)  # 2 of the 4 scored
    assert top.tolist() == [True, False, False, True, False]  # tie at 0.5: lower id wins
    with pytest.raises(ValueError):
        ml.propensity_segment_mask(scores)
    with pytest.raises(ValueError):
        ml.propensity_segment_mask(scores, threshold=0.5, top_fraction=0.1)


# -------------------------------------------------------------------------- value


def test_value_model_beats_the_naive_mean_forecast(value):
    _, _, _, info = value
    metrics = info["metrics"]
    assert metrics["mae"] < 0.9 * metrics["baseline_mae"]
    assert metrics["rmse"] < metrics["baseline_rmse"]
    assert metrics["r2"] > 0.2 and metrics["beats_baseline"] is True
    ranked = [row["feature"] for row in info["feature_importance"]]
    assert ranked.index("tenure_days") > min(ranked.index("recency_days"), ranked.index("monetary"))
    json.dumps(info)


# ------------------------------------------------------------ scoring, versioning


@pytest.mark.parametrize("kind", ["kmeans", "rfm", "propensity", "value"])
def test_scoring_in_three_chunks_equals_scoring_at_once(kind, clusters, propensity, value):
    if kind == "kmeans":
        frame, _, model, _ = clusters
    elif kind == "rfm":
        frame = rfm_population()
        model, _ = ml.rfm_train(frame)
    elif kind == "propensity":
        frame, _, model, _ = propensity
    else:
        frame, _, model, _ = value
    parts = list(ml.score_chunks(model, chunks(frame), kind))
    assert len(parts) == 3
    chunked = pd.concat(parts)
    whole = score_all(model, frame, kind)
    pd.testing.assert_frame_equal(chunked, whole, check_exact=False, rtol=1e-12)
    assert chunked.index.equals(frame.index) and chunked.index.name == "customer_id"
    assert chunked["score"].dtype == np.float64


def test_kmeans_chunk_labels_are_cluster_numbers(clusters):
    frame, _, pipeline, _ = clusters
    scored = score_all(pipeline, frame, "kmeans")
    assert (scored["label"].astype(int).to_numpy() == pipeline.predict(frame)).all()
    assert (scored["score"] >= 0).all()


@pytest.mark.parametrize("kind", ["kmeans", "rfm", "propensity", "value"])
def test_dump_and_load_round_trip_reproduces_scores(kind, clusters, propensity, value):
    if kind == "rfm":
        frame = rfm_population()
        model, _ = ml.rfm_train(frame)
    else:
        frame, _, model, _ = {"kmeans": clusters, "propensity": propensity, "value": value}[kind]
    blob = ml.model_dump(model)
    assert isinstance(blob, bytes)
    restored = ml.model_load(blob)
    pd.testing.assert_frame_equal(score_all(restored, frame, kind), score_all(model, frame, kind))


def test_module_does_not_import_django():
    code = "import sys, segments.ml; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
