"""Scoring customers chunk by chunk with a fitted model, and storing models as bytes.
Pure (no Django)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import joblib
import numpy as np
import pandas as pd

from .common import KINDS, Kind

def _score_frame(model: Any, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    labels: Any = None
    if kind == "kmeans":
        # Distances to every centre in one pass: the nearest is the label, and its
        # distance says how typical the customer is of the cluster (smaller = more).
        distances = model.transform(frame)
        nearest = distances.argmin(axis=1)
        score = distances[np.arange(len(frame)), nearest]
        labels = [str(label) for label in nearest]
    elif kind == "rfm":
        rfm = model.transform(frame)
        score = (rfm["r"] + rfm["f"] + rfm["m"]).to_numpy()  # 3..15, a simple overall rank
        labels = rfm["tier"].to_list()
    elif kind == "propensity":
        score = model.predict_proba(frame)[:, 1]
    elif kind == "value":
        score = model.predict(frame)
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    out = pd.DataFrame({"score": np.asarray(score, dtype="float64")}, index=frame.index)
    out["label"] = pd.Series(labels if labels is not None else [None] * len(frame),
                             index=frame.index, dtype=object)
    out.index.name = "customer_id"
    return out


def score_chunks(model: Any, frames: Iterable[pd.DataFrame], kind: Kind) -> Iterator[pd.DataFrame]:
    """Score chunk by chunk so memory stays flat on a large base.

    Yields one frame per input chunk: index customer_id, `score` (float) and `label`
    (str or None): kmeans -> cluster number as text, score = distance to its centre;
    rfm (an `RfmScorer`) -> tier, score = R+F+M; propensity -> probability, no label;
    value -> predicted amount, no label. Every row is scored independently of its chunk,
    so the chunking never changes a result. Empty chunks yield nothing.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    for frame in frames:
        if len(frame) == 0:
            continue
        yield _score_frame(model, frame, kind)


def model_dump(model: Any) -> bytes:
    """Serialise a fitted model for a database blob (joblib, compressed)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def model_load(data: bytes) -> Any:
    """Inverse of `model_dump`. Unpickling runs code: only load blobs this service wrote."""
    return joblib.load(io.BytesIO(data))
