"""segments/ml/kmeans.py: planted clusters found, ordered, named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segments.ml import kmeans
from segments.ml.kmeans import kmeans_train

from .planted import PLANTED, RFM, planted_clusters, score_all

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
    retrained, _ = kmeans_train(shuffled, RFM, k_range=[5], random_state=3)
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
    monkeypatch.setattr(kmeans, "MINIBATCH_ROWS", 1000)
    pipeline, info = kmeans_train(frame, RFM, k_range=range(3, 8), sample_size=800)
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
        kmeans_train(frame, [*RFM, "plan"])


def test_the_silhouette_is_computed_in_small_blocks_with_the_same_result(monkeypatch):
    """scikit-learn's default working memory held the whole 10,000 x 10,000 distance matrix
    (800 MB) of the silhouette's sample: the largest allocation of a training."""
    import sklearn

    frame, _ = planted_clusters(n_per_group=100, seed=3)
    seen = []
    real = kmeans.silhouette_score

    def watched(*args, **kwargs):
        seen.append(sklearn.get_config()["working_memory"])
        return real(*args, **kwargs)

    monkeypatch.setattr(kmeans, "silhouette_score", watched)
    _, info = kmeans_train(frame, RFM, k_range=[3, 4], random_state=0)
    assert len(seen) == 2 and all(mib <= 64 for mib in seen)
    monkeypatch.setattr(kmeans, "SILHOUETTE_MEMORY_MIB", 1024)  # scikit-learn's default
    _, default = kmeans_train(frame, RFM, k_range=[3, 4], random_state=0)
    assert info["silhouette_by_k"] == default["silhouette_by_k"]
