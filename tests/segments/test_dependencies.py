"""segments/dependencies.py: which segments a rule references, and refresh order. No database."""

from __future__ import annotations

from segments import dependencies


def cond(field: str = "country", op: str = "eq", value="US", **extra) -> dict:
    return {"field": field, "op": op, "value": value, **extra}


def test_segment_refs_are_found_in_a_raw_rule():
    rule = {"all": [cond("segment", "eq", 4), {"not": {"any": [cond("segment", "in", [5, 6])]}}, cond()]}
    assert dependencies.rule_segment_refs(rule) == {4, 5, 6}
    assert dependencies.rule_segment_refs({"all": "broken"}) == frozenset()


def test_segment_order_puts_dependencies_first():
    order = dependencies.segment_order({1: {3}, 2: set(), 3: {2}, 4: {1, 2}})
    assert order.index(2) < order.index(3) < order.index(1) < order.index(4)
    assert sorted(order) == [1, 2, 3, 4]


def test_segment_order_survives_a_cycle():
    assert sorted(dependencies.segment_order({1: {2}, 2: {1}})) == [1, 2]
