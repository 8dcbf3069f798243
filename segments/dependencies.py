"""Which segments a rule depends on, and an order that refreshes dependencies first. Pure.

A rule can test membership of other segments ({"field": "segment", ...}); those references
form a graph that validation keeps acyclic and a refresh of everything walks bottom-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .fields import SEGMENT_FIELD, is_int

MAX_WALK_DEPTH = 7  # one past the deepest valid rule (rules.MAX_DEPTH = 6 groups)


def cycle_through(start: int, target: int | None, graph: Mapping[int, Iterable[int]]) -> list[int] | None:
    """The chain start -> ... -> target through segment references, if there is one."""
    if target is None:
        return None
    seen: set[int] = set()
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    while stack:
        node, trail = stack.pop()
        if node == target:
            return trail
        if node in seen:
            continue
        seen.add(node)
        for nxt in graph.get(node, ()):
            stack.append((nxt, [*trail, nxt]))
    return None


def rule_segment_refs(rule: Any) -> frozenset[int]:
    """Segment ids a raw (possibly invalid) rule references through membership conditions."""
    found: set[int] = set()

    def walk(raw: Any, depth: int) -> None:
        if depth > MAX_WALK_DEPTH or not isinstance(raw, dict):
            return
        for key in ("all", "any"):
            if isinstance(raw.get(key), list):
                for item in raw[key]:
                    walk(item, depth + 1)
        if "not" in raw:
            walk(raw["not"], depth + 1)
        if raw.get("field") == SEGMENT_FIELD:
            values = raw.get("value")
            for value in values if isinstance(values, list) else [values]:
                if is_int(value):
                    found.add(value)

    walk(rule, 0)
    return frozenset(found)


def segment_order(graph: Mapping[int, Iterable[int]]) -> list[int]:
    """Segment ids so that every segment comes after those its rule references
    (a refresh of all segments then reads fresh memberships). Cycles, which validation
    refuses, would just be broken at an arbitrary point rather than loop forever."""
    order: list[int] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    for root in sorted(graph):
        stack: list[tuple[int, Iterator[int]]] = [(root, iter(sorted(graph.get(root, ()))))]
        if state.get(root):
            continue
        state[root] = 1
        while stack:
            node, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                stack.pop()
                state[node] = 2
                order.append(node)
            elif nxt in graph and not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(graph.get(nxt, ())))))
    return order
