"""What the statistics tests share: references written out independently of experiments.stats."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

Z975 = NormalDist().inv_cdf(0.975)


def json_safe(obj) -> str:
    # Raises ValueError on NaN or infinity anywhere in the structure.
    return json.dumps(obj, allow_nan=False)


def two_sided_normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def holm_by_hand(pvals: list[float]) -> list[float]:
    m = len(pvals)
    order = sorted(range(m), key=lambda i: pvals[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvals[i]))
        out[i] = running
    return out
