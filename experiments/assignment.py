"""Deterministic arm assignment: a hash of the experiment's salt and the unit id. No Django.

    arm_for(salt, unit_id, [("control", 1), ("treatment", 1)]) -> "control" or "treatment"

The contract, relied on by campaign launch (which assigns before it sends) and by reruns:
- The bucket is the first 8 bytes of SHA-256 over ``f"{salt}:{unit_id}"`` (UTF-8), read as a
  big-endian unsigned integer and divided by 2**64: a number in [0, 1) that is uniform over
  units and independent between experiments with different salts.
- Arms split [0, 1) in the order given, each taking a share proportional to its weight; the
  unit goes to the arm whose share holds its bucket.
- So the same salt, unit id, arms (order and weights) always give the same arm, on any
  machine and in any Python version. Changing the salt reshuffles everyone; changing
  weights or the order of arms moves units between arms, so freeze both at launch.

SHA-256 rather than Python's ``hash()``, which is salted per process: a million assignments
take about a second, and any tool with SHA-256 (a warehouse, a spreadsheet script) can
recompute a unit's bucket to audit an assignment.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

SCALE = float(2**64)


def bucket_for(salt: str, unit_id: object) -> float:
    """The unit's position in [0, 1) for this salt."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / SCALE


def _bounds(arms_with_weights: Sequence[tuple[str, float]]) -> tuple[list[str], list[float]]:
    if not arms_with_weights:
        raise ValueError("at least one arm is needed")
    names = [name for name, _ in arms_with_weights]
    weights = [float(weight) for _, weight in arms_with_weights]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names repeat: {names}")
    if any(not w > 0 for w in weights):
        raise ValueError(f"arm weights must be positive: {weights}")
    total = sum(weights)
    # Upper bound of each arm's share; the last is forced to 1 so rounding cannot leave a gap.
    upper = [c / total for c in accumulate(weights)]
    upper[-1] = 1.0
    return names, upper


def arm_for(salt: str, unit_id: object, arms_with_weights: Sequence[tuple[str, float]]) -> str:
    """The arm of one unit; ``arms_with_weights`` is [(arm name, weight), ...] in a fixed order."""
    names, upper = _bounds(arms_with_weights)
    return names[bisect_right(upper, bucket_for(salt, unit_id))]

