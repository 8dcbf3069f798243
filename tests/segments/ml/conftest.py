"""Models trained once per test session on the planted data sets."""

from __future__ import annotations

import pytest

from segments.ml.kmeans import kmeans_train
from segments.ml.propensity import propensity_train
from segments.ml.value import value_train

from .planted import RFM, churn_data, planted_clusters, spend_data


@pytest.fixture(scope="session")
def clusters():
    frame, truth = planted_clusters()
    pipeline, info = kmeans_train(frame, RFM, random_state=0)
    return frame, truth, pipeline, info


@pytest.fixture(scope="session")
def propensity():
    frame, churned = churn_data()
    features = ["recency_days", "events_support_ticket_90d", "noise", "plan", "has_app"]
    pipeline, info = propensity_train(frame, churned, features, random_state=0)
    return frame, churned, pipeline, info


@pytest.fixture(scope="session")
def value():
    frame, spend = spend_data()
    features = ["recency_days", "frequency", "monetary", "tenure_days", "region"]
    pipeline, info = value_train(frame, spend, features, random_state=0)
    return frame, spend, pipeline, info
