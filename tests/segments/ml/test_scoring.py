"""segments/ml/scoring.py: chunked scoring, dump and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.ml.rfm import rfm_train
from segments.ml.scoring import model_dump, model_load, score_chunks

from .planted import chunks, rfm_population, score_all

@pytest.mark.parametrize("kind", ["kmeans", "rfm", "propensity", "value"])
def test_scoring_in_three_chunks_equals_scoring_at_once(kind, clusters, propensity, value):
    if kind == "kmeans":
        frame, _, model, _ = clusters
    elif kind == "rfm":
        frame = rfm_population()
        model, _ = rfm_train(frame)
    elif kind == "propensity":
        frame, _, model, _ = propensity
    else:
        frame, _, model, _ = value
    parts = list(score_chunks(model, chunks(frame), kind))
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
        model, _ = rfm_train(frame)
    else:
        frame, _, model, _ = {"kmeans": clusters, "propensity": propensity, "value": value}[kind]
    blob = model_dump(model)
    assert isinstance(blob, bytes)
    restored = model_load(blob)
    pd.testing.assert_frame_equal(score_all(restored, frame, kind), score_all(model, frame, kind))
