"""What a model's metrics mean, in words a marketer reads on the Models pages. Pure.

Every key a `*_train` (or an imported uplift model) stores in `metrics` has a name, a
sentence, and a way to print its value; a key not listed here is shown as it is, so a new
metric never disappears from the page, it only waits for its words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.formatting import NA, count, number, p_value, percent


def _score(x: Any) -> str:
    return NA if x is None else f"{x:.3f}"


def _yes_no(x: Any) -> str:
    return "yes" if x else "no"


def _shares(x: Any) -> str:
    if not isinstance(x, Mapping):
        return str(x)
    return ", ".join(f"{k}: {percent(v, 1)}" for k, v in x.items())


def _counts(x: Any) -> str:
    if not isinstance(x, Mapping):
        return str(x)
    return ", ".join(f"{k}: {count(v)}" for k, v in x.items())


@dataclass(frozen=True)
class MetricWords:
    name: str
    meaning: str
    show: Callable[[Any], str] = _score


METRICS: dict[str, MetricWords] = {
    # churn / yes-no propensity: all on held-out customers the model never saw
    "roc_auc": MetricWords("ROC AUC", "How well it ranks: the chance that a customer who did it scores higher than one "
                           "who did not. 0.5 is a coin flip, 1 is perfect; above 0.7 is useful for targeting."),
    "precision": MetricWords("Precision", "Of the customers it flags (score at or above the threshold), the share who "
                             "really did it.", lambda x: percent(x, 1)),
    "recall": MetricWords("Recall", "Of the customers who really did it, the share it flags.", lambda x: percent(x, 1)),
    "f1": MetricWords("F1 score", "One number balancing precision and recall (their harmonic mean): 0 to 1, higher "
                      "is better."),
    "brier": MetricWords("Brier score", "How close the predicted chances are to what happened: the average squared "
                         "gap, 0 is perfect, lower is better. Always guessing the base rate scores base rate × "
                         "(1 − base rate)."),
    "threshold": MetricWords("Threshold", "The score from which a customer counts as flagged, chosen on the training "
                             "customers to balance precision and recall (best F1)."),
    "base_rate": MetricWords("Base rate", "The share of held-out customers who actually did it: the rate a random "
                             "pick would hit.", lambda x: percent(x, 1)),
    "cv_f1_at_threshold": MetricWords("F1 in cross-validation", "F1 at that threshold on the training customers' "
                                      "out-of-fold predictions; far above the held-out F1 would mean overfitting."),
    # predicted value (spend)
    "mae": MetricWords("Mean absolute error", "The average miss per customer, in the currency of the orders; lower "
                       "is better.", number),
    "rmse": MetricWords("Root mean squared error", "Like the average miss, but a large miss counts more; lower is "
                        "better.", number),
    "r2": MetricWords("R²", "The share of the differences in spend between customers it explains: 1 is perfect, 0 is "
                      "no better than predicting the average for everyone, below 0 is worse."),
    "baseline_mae": MetricWords("Mean absolute error of the average", "The same miss when everyone is predicted the "
                                "training average: the number to beat.", number),
    "baseline_rmse": MetricWords("Root mean squared error of the average", "The same, for predicting the average: "
                                 "the number to beat.", number),
    "baseline_r2": MetricWords("R² of the average", "Predicting the average explains nothing (about 0) by "
                               "definition; shown for comparison."),
    "holdout_total_actual": MetricWords("Actual spend of held-out customers", "What the held-out customers really "
                                        "spent in the horizon, in total.", number),
    "holdout_total_predicted": MetricWords("Predicted spend of held-out customers", "What the model predicted for "
                                           "them, in total: close to the actual total means forecasts add up.", number),
    "beats_baseline": MetricWords("Beats the average", "Whether its misses are smaller than predicting the average for "
                                  "everyone, on both error measures.", _yes_no),
    # clusters
    "silhouette": MetricWords("Silhouette", "How distinct the clusters are, from −1 to 1: above 0.5 clearly separate "
                              "groups, around 0.25 a weak structure, near 0 overlapping groups."),
    "inertia": MetricWords("Inertia", "How tightly customers sit around their cluster's centre (sum of squared "
                           "distances on scaled features); only comparable between models of the same data.", number),
    "k": MetricWords("Clusters", "How many clusters it chose: the number with the best silhouette.", count),
    # RFM
    "tier_counts": MetricWords("Customers per tier", "How many customers fall in each RFM tier.", _counts),
    "tier_shares": MetricWords("Share per tier", "The same as shares of all customers.", _shares),
    # uplift (scores imported from an experiment's uplift model)
    "qini_coefficient": MetricWords("Qini coefficient", "How much better targeting by the model's predicted uplift "
                                    "gains than picking customers at random, on held-out units: above 0 beats random, "
                                    "0 or below does not.", lambda x: NA if x is None else f"{x:.5f}"),
    "qini_p_value": MetricWords("Qini p-value", "How often the same ranking reaches its Qini coefficient by chance, "
                                "with the treatment labels of the held-out units shuffled: below 0.05 its gain over random targeting is more than "
                                "luck, above it the gain may be noise.", p_value),
}


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each metric as {key, name, value, meaning}, in the order above, unknown keys last."""
    known = [k for k in METRICS if k in metrics]
    rest = [k for k in metrics if k not in METRICS]
    rows = []
    for key in known + rest:
        words = METRICS.get(key)
        value = metrics[key]
        if words is None:
            rows.append({"key": key, "name": key, "value": str(value), "meaning": ""})
        else:
            rows.append({"key": key, "name": words.name, "value": words.show(value), "meaning": words.meaning})
    return rows


def key_metric(metrics: Mapping[str, Any]) -> str:
    """The one metric a list of models shows, named in words."""
    for key in ("roc_auc", "silhouette", "r2", "qini_coefficient"):
        if metrics.get(key) is not None:
            words = METRICS[key]
            return f"{words.name} {words.show(metrics[key])}"
    return ""
