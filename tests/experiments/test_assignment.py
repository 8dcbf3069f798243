"""experiments/assignment.py: the hash contract campaign launch relies on."""

import hashlib
from collections import Counter

import pytest

from experiments.assignment import arm_for, bucket_for

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
