"""segments/ml/rfm.py: quintiles and tiers."""

from __future__ import annotations

import json

from segments.ml.rfm import RFM_TIERS, rfm_scores, rfm_train

from .planted import rfm_population

def test_rfm_scores_are_quintiles_from_1_to_5_despite_ties():
    scores = rfm_scores(rfm_population())
    for column in ("r", "f", "m"):
        assert set(scores[column]) == {1, 2, 3, 4, 5}
        counts = scores[column].value_counts()
        assert counts.max() - counts.min() <= 1  # rank(method="first"): equal fifths
    assert set(scores["tier"]) <= set(RFM_TIERS)


def test_rfm_fewer_days_since_last_order_scores_higher():
    population = rfm_population()
    scores = rfm_scores(population)
    known = population["recency_days"].notna()
    by_recency = scores.loc[known, "r"][population.loc[known, "recency_days"].sort_values().index]
    assert by_recency.is_monotonic_decreasing


def test_rfm_best_customer_is_champion_and_worst_is_lost():
    scores = rfm_scores(rfm_population())
    assert scores.loc["best", ["r", "f", "m"]].tolist() == [5, 5, 5]
    assert scores.loc["best", "tier"] == "Champions"
    assert scores.loc["worst", ["r", "f", "m"]].tolist() == [1, 1, 1]
    assert scores.loc["worst", "tier"] == "Lost"
    assert scores.loc["brand_new", "tier"] == "New customers"
    assert scores.loc["big_but_gone", "tier"] == "Cannot lose them"
    assert scores.loc["no_orders", "tier"] == "Lost"  # no order at all: the worst scores


def test_rfm_scorer_gives_the_same_extremes_and_info():
    population = rfm_population()
    scorer, info = rfm_train(population)
    tiers = scorer.transform(population)["tier"]
    assert tiers["best"] == "Champions" and tiers["worst"] == "Lost"
    assert sum(info["metrics"]["tier_counts"].values()) == len(population)
    json.dumps(info)
