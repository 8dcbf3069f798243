"""segments/ml/explain.py: every metric a model stores is named and explained in words."""

from segments.ml.explain import METRICS, key_metric, metric_rows


def test_every_metric_the_trainers_store_has_words(clusters, propensity, value):
    for *_, info in (clusters, propensity, value):
        missing = set(info["metrics"]) - set(METRICS)
        assert not missing, f"{info['kind']} stores metrics with no words: {missing}"


def test_metric_rows_name_explain_and_print_values_for_people():
    rows = {r["key"]: r for r in metric_rows({"roc_auc": 0.8123, "base_rate": 0.134, "brier": 0.1, "new_one": 3})}
    assert rows["roc_auc"]["name"] == "ROC AUC" and rows["roc_auc"]["value"] == "0.812"
    assert "coin flip" in rows["roc_auc"]["meaning"]
    assert rows["base_rate"]["value"] == "13.4%"
    assert "lower is better" in rows["brier"]["meaning"]
    assert rows["new_one"] == {"key": "new_one", "name": "new_one", "value": "3", "meaning": ""}


def test_key_metric_is_named_in_words():
    assert key_metric({"silhouette": 0.61234, "k": 5}) == "Silhouette 0.612"
    assert key_metric({"tier_counts": {}}) == ""
