"""What every model kind shares: kinds, column names, and the JSON-ready `info`. Pure (no Django).

Every `*_train` returns `(model, info)`. `info` is JSON-ready (plain floats, ints, strings,
lists, dicts; NaN/inf become None) and always holds: kind, params, features,
training_rows, seconds, metrics, versions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn

Kind = Literal["kmeans", "rfm", "propensity", "value"]
KINDS: tuple[str, ...] = ("kmeans", "rfm", "propensity", "value")

RECENCY, FREQUENCY, MONETARY = "recency_days", "frequency", "monetary"


def jsonable(value: Any) -> Any:
    """Plain Python for `info`, which the Django side stores in a JSONField."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [jsonable(v) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # JSON has no NaN/inf; None says "not defined" (e.g. the first ROC threshold).
        return float(value) if math.isfinite(value) else None
    return value


def library_versions() -> dict[str, str]:
    # Pickled pipelines are only guaranteed to load under the library versions that wrote
    # them; recording them lets the loader say why an old model no longer loads.
    return {"scikit-learn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__}


def model_info(kind: str, params: dict, features: Sequence[str], rows: int, started: float,
          metrics: dict, **extra: Any) -> dict[str, Any]:
    info = {
        "kind": kind,
        "params": params,
        "features": list(features),
        "training_rows": rows,
        "seconds": round(time.perf_counter() - started, 3),
        "metrics": metrics,
        "versions": library_versions(),
        **extra,
    }
    return jsonable(info)


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    # A silently imputed missing column would score everyone on the median; fail loudly.
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the frame: {missing}")
