"""What every statistics module shares: JSON-safe numbers and the normal quantile.

Every public function of the package returns plain dicts of Python floats/ints/strings/lists,
ready for ``json.dumps(..., allow_nan=False)``: anything undefined (a rate with no units, a
lift over a zero control, an interval with no variance) is ``None``, never NaN or infinity.
"""

from __future__ import annotations

import math

from scipy import stats as sps

Interval = list[float | None]  # [lo, hi]; None where undefined


def json_float(x: float | None) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def interval(lo: float | None, hi: float | None) -> Interval:
    return [json_float(lo), json_float(hi)]


def z_quantile(alpha: float) -> float:
    """Two-sided normal critical value."""
    return float(sps.norm.ppf(1 - alpha / 2))
