"""experiments/assignment.py: the hash contract campaign launch relies on."""

import hashlib
from bisect import bisect_right
from collections import Counter

import pytest

from experiments.assignment import SCALE, _bounds, arm_for, bucket_for, key_bound_bytes, key_bounds, key_for

ARMS = [("holdout", 1), ("offer", 9)]


def test_the_same_salt_and_unit_always_get_the_same_arm():
    assert [arm_for("s1", 42, ARMS) for _ in range(3)] == [arm_for("s1", 42, ARMS)] * 3


def test_bucket_is_the_documented_sha256_prefix():
    expected = int.from_bytes(hashlib.sha256(b"s1:42").digest()[:8], "big") / 2**64
    assert bucket_for("s1", 42) == expected


def test_arms_split_units_in_proportion_to_their_weights():
    counts = Counter(arm_for("split", i, ARMS) for i in range(20_000))
    assert counts["offer"] / 20_000 == pytest.approx(0.9, abs=0.01)


def test_another_salt_reshuffles_units():
    first = [arm_for("a", i, [("x", 1), ("y", 1)]) for i in range(1000)]
    second = [arm_for("b", i, [("x", 1), ("y", 1)]) for i in range(1000)]
    agree = sum(f == s for f, s in zip(first, second))
    assert 400 < agree < 600  # independent: about half agree


@pytest.mark.parametrize("arms", [[], [("a", 1), ("a", 1)], [("a", 0), ("b", 1)]])
def test_invalid_arms_are_refused(arms):
    with pytest.raises(ValueError):
        arm_for("s", 1, arms)


WEIGHTINGS = [ARMS, [("a", 1), ("b", 1)], [("a", 1), ("b", 2), ("c", 0.37), ("holdout", 0.1)], [("a", 3), ("b", 1e-9)], [("a", 1), ("b", 1e-20)]]


@pytest.mark.parametrize("arms", WEIGHTINGS)
def test_key_bounds_split_keys_where_the_buckets_change_arm(arms):
    # Given the integer bounds a database compares the hash's first 8 bytes with
    names, bounds = key_bounds(arms)
    _, upper = _bounds(arms)
    assert names == [a for a, _ in arms] and len(bounds) == len(arms) - 1
    for i, bound in enumerate(bounds):
        # Then the key just below a bound is in the arm before it and the bound itself in the
        # next, by the floating-point bucket arm_for compares (key / 2**64)
        assert (bound - 1) / SCALE < upper[i] <= bound / SCALE


@pytest.mark.parametrize("arms", WEIGHTINGS)
def test_arms_by_integer_key_are_arm_fors(arms):
    names, bounds = key_bounds(arms)
    for unit in range(5000):
        assert names[bisect_right(bounds, key_for("k", unit))] == arm_for("k", unit, arms)


def test_a_key_whose_bucket_rounds_to_one_is_the_last_arms():
    # 2**64 - 1 rounds to 2.0**64 in floating point: a bucket of exactly 1.0
    names, bounds = key_bounds(ARMS)
    assert (2**64 - 1) / SCALE == 1.0
    assert names[bisect_right(bounds, 2**64 - 1)] == "offer"


def test_bound_bytes_compare_like_keys():
    bound = key_bounds([("a", 1), ("b", 2)])[1][0]
    raw = key_bound_bytes(bound)
    below, at = (bound - 1).to_bytes(8, "big") + b"\xff" * 24, bound.to_bytes(8, "big") + b"\x00" * 24
    # A whole 32-byte digest against the 8-byte bound: byte order is key order
    assert below < raw <= at


def test_an_arm_whose_share_rounds_to_all_still_leaves_the_top_keys_to_the_last_arm():
    # 1 / (1 + 1e-20) is 1.0 in floating point: only keys whose bucket rounds to 1.0 are b's
    names, bounds = key_bounds([("a", 1), ("b", 1e-20)])
    assert bounds[0] < 2**64 and names[bisect_right(bounds, 2**64 - 1)] == "b"
    assert names[bisect_right(bounds, 2**63)] == "a"
