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

A database assigns the same arms without floating point: ``key_bounds`` turns the arms'
shares into integer bounds on the 8-byte key, and "key < bound" picks the same arm as the
bucket comparison for every key (the bounds are found by bisection over Python's own
int-to-float rounding). On PostgreSQL the comparison is of bytes: ``sha256(...) < bound``,
memcmp order being big-endian unsigned order (``key_bound_bytes``).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

SCALE = float(2**64)
KEYS = 2**64


def key_for(salt: str, unit_id: object) -> int:
    """The unit's 64-bit key for this salt: the first 8 bytes of the digest, big-endian."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()[:8], "big")


def bucket_for(salt: str, unit_id: object) -> float:
    """The unit's position in [0, 1) for this salt."""
    return key_for(salt, unit_id) / SCALE


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
    # min(): a key within 2**10 of 2**64 rounds to a bucket of exactly 1.0; it is the last arm's.
    return names[min(bisect_right(upper, bucket_for(salt, unit_id)), len(names) - 1)]


def _first_key_at(share: float) -> int:
    """The smallest key whose bucket (key / 2**64 in floating point) is >= share: below 2**64
    even for a share of 1.0, since the largest keys' buckets round up to exactly 1.0."""
    target = share * SCALE  # exact: a power of two
    low, high = 0, KEYS
    while low < high:
        middle = (low + high) // 2
        if float(middle) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def key_bounds(arms_with_weights: Sequence[tuple[str, float]]) -> tuple[list[str], list[int]]:
    """(arm names, bounds): a unit is in the first arm whose bound exceeds its key, and in the
    last arm when none does (the last arm has no bound). Same arms as ``arm_for``."""
    names, upper = _bounds(arms_with_weights)
    return names, [_first_key_at(u) for u in upper[:-1]]


def key_bound_bytes(bound: int) -> bytes:
    """A bound as the 8 bytes a digest is compared with (``digest < bound`` in byte order is
    ``key < bound``, even for the whole 32-byte digest: a digest that begins with the bound
    is longer, so greater). Bounds are below 2**64: keys in the last 2**10 round to 2.0**64."""
    return bound.to_bytes(8, "big")

