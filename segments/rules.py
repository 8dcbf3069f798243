"""Rule trees for rule segments: validation and a normalised tree, in pure Python (no Django).

A rule is JSON. Groups nest; conditions compare one registered field:

    {"all": [                                   # also "any"; {"not": node} negates a node
        {"field": "country", "op": "in", "value": ["US", "CA"]},
        {"field": "attributes.plan", "op": "eq", "value": "pro"},
        {"field": "orders_in_last_days", "args": {"days": 30}, "op": "gte", "value": 2},
        {"not": {"field": "segment", "op": "eq", "value": 12}},
    ]}

`rule_validate` checks a tree against a `fields.Registry` (which fields exist, their types, the
segments and models that can be referenced) and returns a tree of `Group` / `Not` /
`Condition` whose values are already typed (dates are `date`, between is a pair, ...).
Every problem is reported with the path of the node (`rule.all[2].any[0].value`), all of
them at once, so a rule builder can mark every bad node in one round trip.

The Django side (segments/compile.py) turns the validated tree into one ORM query with
`rule_fold`; this module never builds SQL, and only names that the registry knows can
reach the compiler, so a field name can never smuggle SQL in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from .dependencies import cycle_through
from .fields import (
    MAX_NUMBER, OPERATORS, FieldSpec, Registry, is_int, is_number, parse_date, parse_datetime,
)

# Negative operators are the exact complement of their positive twin: "country ne US"
# includes customers with no country, so `not {eq}` and `ne` always agree.
NEGATIONS = {"ne": "eq", "not_in": "in"}

# Limits: a rule is typed by a person in a builder; anything past these is a mistake or
# an attack, and each would make the one SQL query larger.
MAX_DEPTH = 6  # nested groups
MAX_CONDITIONS = 100
MAX_LIST = 1000  # values of in / not_in
MAX_TEXT = 500  # characters of one text value
MAX_DAYS = 36_500


class RuleInvalid(ValueError):
    """The rule cannot be used; `errors` lists every problem with its path."""

    def __init__(self, errors: Sequence[RuleError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in self.errors))

    def as_list(self) -> list[dict[str, str]]:
        return [{"path": e.path, "message": e.message} for e in self.errors]


@dataclass(frozen=True)
class RuleError:
    path: str
    message: str


@dataclass(frozen=True)
class Condition:
    field: FieldSpec
    op: str
    value: Any  # typed: str, int, float, bool, date, datetime, a (low, high) pair or a tuple
    args: Mapping[str, Any]
    path: str


@dataclass(frozen=True)
class Group:
    mode: str  # "all" or "any"
    children: tuple[Node, ...]
    path: str


@dataclass(frozen=True)
class Not:
    child: Node
    path: str


Node = Union[Group, Not, Condition]
T = TypeVar("T")


# ----------------------------------------------------------------------- validation


class _Checker:
    def __init__(self, registry: Registry, self_id: int | None):
        self.registry = registry
        self.self_id = self_id
        self.errors: list[RuleError] = []
        self.conditions = 0

    def fail(self, path: str, message: str) -> None:
        self.errors.append(RuleError(path, message))

    def node(self, raw: Any, path: str, depth: int) -> Node | None:
        if not isinstance(raw, dict):
            self.fail(path, f"expected an object (a group or a condition), got {_kind(raw)}")
            return None
        group_keys = [k for k in ("all", "any", "not") if k in raw]
        if group_keys:
            if len(raw) != 1:
                self.fail(path, "a group has exactly one key: all, any or not")
                return None
            if depth >= MAX_DEPTH:
                self.fail(path, f"too deep: groups nest at most {MAX_DEPTH} levels")
                return None
            key = group_keys[0]
            if key == "not":
                child = self.node(raw["not"], f"{path}.not", depth + 1)
                return Not(child, path) if child is not None else None
            items = raw[key]
            if not isinstance(items, list):
                self.fail(f"{path}.{key}", f"expected a list of conditions, got {_kind(items)}")
                return None
            children = [self.node(item, f"{path}.{key}[{i}]", depth + 1) for i, item in enumerate(items)]
            if any(c is None for c in children):
                return None
            return Group(key, tuple(children), path)  # type: ignore[arg-type]
        if "field" in raw or "op" in raw:
            return self.condition(raw, path)
        self.fail(path, "expected a group (all / any / not) or a condition (field, op, value)")
        return None

    def condition(self, raw: dict, path: str) -> Condition | None:
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail(path, f"too many conditions: at most {MAX_CONDITIONS}")
        unknown = sorted(set(raw) - {"field", "op", "value", "args"})
        if unknown:
            self.fail(path, f"unknown key(s) {unknown}; a condition has field, op, value and args")
        name = raw.get("field")
        if not isinstance(name, str) or not name:
            self.fail(f"{path}.field", f"expected a field name, got {_kind(name)}")
            return None
        spec = self.registry.fields.get(name)
        if spec is None:
            self.fail(f"{path}.field", f"unknown field {_shown(name)}")
            return None
        op = raw.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            self.fail(f"{path}.op", f"unknown operator {_shown(op)}; one of {', '.join(OPERATORS)}")
            return None
        if op not in spec.operators:
            self.fail(f"{path}.op", f"operator {op!r} is not allowed for {spec.name} ({spec.type}); "
                                    f"use one of {', '.join(spec.operators)}")
            return None
        args = self.args(spec, raw.get("args"), f"{path}.args")
        before = len(self.errors)
        value = self.value(spec, op, raw, f"{path}.value")
        if args is None or len(self.errors) > before:
            return None
        return Condition(spec, op, value, args, path)

    def args(self, spec: FieldSpec, raw: Any, path: str) -> dict | None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail(path, f"expected an object, got {_kind(raw)}")
            return None
        ok, out = True, {}
        for name in sorted(set(raw) - set(spec.args)):
            self.fail(f"{path}.{name}", f"{spec.name} takes no argument {_shown(name)}"
                                        + (f"; it takes {', '.join(spec.args)}" if spec.args else ""))
            ok = False
        for name, arg in spec.args.items():
            if name not in raw:
                if arg.required:
                    self.fail(f"{path}.{name}", f"{spec.name} needs the argument {name!r} ({arg.type})")
                    ok = False
                continue
            value = raw[name]
            if arg.type == "integer":
                if not is_int(value):
                    self.fail(f"{path}.{name}", f"expected an integer, got {_kind(value)}")
                    ok = False
                    continue
                if (arg.minimum is not None and value < arg.minimum) or (arg.maximum is not None and value > arg.maximum):
                    self.fail(f"{path}.{name}", f"must be between {arg.minimum} and {arg.maximum}")
                    ok = False
                    continue
            elif not isinstance(value, str) or not value or len(value) > MAX_TEXT:
                self.fail(f"{path}.{name}", f"expected a text of 1 to {MAX_TEXT} characters, got {_kind(value)}")
                ok = False
                continue
            if arg.choices and value not in arg.choices:
                self.fail(f"{path}.{name}", f"unknown {name} {_shown(value)}; one of {', '.join(map(str, arg.choices[:20]))}")
                ok = False
                continue
            out[name] = value
        return out if ok else None

    def value(self, spec: FieldSpec, op: str, raw: dict, path: str) -> Any:
        if op == "is_null":
            value = raw.get("value", True)
            if not isinstance(value, bool):
                self.fail(path, f"is_null takes true or false, got {_kind(value)}")
            return value
        if "value" not in raw:
            self.fail(path, f"operator {op!r} needs a value")
            return None
        value = raw["value"]
        if op == "within_last_days":
            if not is_int(value) or not 0 < value <= MAX_DAYS:
                self.fail(path, f"within_last_days takes a whole number of days from 1 to {MAX_DAYS}, got {_shown(value)}")
            return value
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.fail(path, f"{op} takes a non-empty list, got {_kind(value)}")
                return None
            if len(value) > MAX_LIST:
                self.fail(path, f"list too long: {len(value)} values, at most {MAX_LIST}")
                return None
            items = [self.scalar(spec, item, f"{path}[{i}]") for i, item in enumerate(value)]
            return tuple(dict.fromkeys(items))  # duplicates change nothing: drop them
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, f"between takes a list of two values [low, high], got {_kind(value)}")
                return None
            low = self.scalar(spec, value[0], f"{path}[0]")
            high = self.scalar(spec, value[1], f"{path}[1]")
            if low is not None and high is not None and low > high:
                self.fail(path, "between needs low <= high")
            return (low, high)
        if op in ("contains", "starts_with"):
            if not isinstance(value, str) or not value:
                self.fail(path, f"{op} takes a non-empty text, got {_kind(value)}")
                return None
        return self.scalar(spec, value, path)

    def scalar(self, spec: FieldSpec, value: Any, path: str) -> Any:
        """The typed value, or None after recording what is wrong with it."""
        kind, raw = spec.type, value
        problem = None
        if kind == "text":
            if not isinstance(value, str):
                problem = f"expected a text for {spec.name}, got {_kind(value)}"
            elif len(value) > MAX_TEXT:
                problem = f"text too long: {len(value)} characters, at most {MAX_TEXT}"
        elif kind == "integer":
            if not is_int(value) or abs(value) > MAX_NUMBER:
                problem = f"expected an integer for {spec.name}, got {_kind(value)}"
        elif kind == "number":
            if not is_number(value):
                problem = f"expected a number for {spec.name}, got {_kind(value)}"
        elif kind == "boolean":
            if not isinstance(value, bool):
                problem = f"expected true or false for {spec.name}, got {_kind(value)}"
        elif kind == "date":
            value = parse_date(value) if isinstance(value, str) else None
            if value is None:
                problem = f"expected a date YYYY-MM-DD for {spec.name}, got {_kind(raw)}"
        elif kind == "datetime":
            value = parse_datetime(value) if isinstance(value, str) else None
            if value is None:
                problem = f"expected a date or an ISO 8601 date and time for {spec.name}, got {_kind(raw)}"
        elif kind == "segment":
            return self.segment(value, path)
        else:
            raise AssertionError(f"field {spec.name} has unknown type {kind}")
        if problem:
            self.fail(path, problem)
            return None
        return value

    def segment(self, value: Any, path: str) -> int | None:
        if not is_int(value):
            self.fail(path, f"expected a segment id (an integer), got {_kind(value)}")
            return None
        if value not in self.registry.segments:
            self.fail(path, f"unknown segment {value}")
            return None
        cycle = cycle_through(value, self.self_id, self.registry.segments)
        if cycle is not None:
            names = [self.registry.segment_names.get(s, f"#{s}") for s in [self.self_id, *cycle]]
            self.fail(path, "membership makes a cycle: " + " -> ".join(names))
        return value


def rule_validate(rule: Any, registry: Registry, *, self_id: int | None = None) -> Node:
    """The validated, typed tree of `rule`, or `RuleInvalid` listing every problem.

    `self_id` is the segment the rule belongs to (None for a new one or a preview): a rule
    may not reference it through any chain of segment memberships.
    """
    checker = _Checker(registry, self_id)
    node = checker.node(rule, "rule", 0)
    if checker.errors or node is None:
        raise RuleInvalid(checker.errors or [RuleError("rule", "invalid rule")])
    return node


# --------------------------------------------------------------------------- walking


def rule_fold(
    node: Node,
    *,
    condition: Callable[[Condition], T],
    all_of: Callable[[list[T]], T],
    any_of: Callable[[list[T]], T],
    negate: Callable[[T], T],
) -> T:
    """Fold a validated tree bottom-up: the compiler supplies how to combine."""
    if isinstance(node, Condition):
        return condition(node)
    if isinstance(node, Not):
        return negate(rule_fold(node.child, condition=condition, all_of=all_of, any_of=any_of, negate=negate))
    parts = [rule_fold(c, condition=condition, all_of=all_of, any_of=any_of, negate=negate) for c in node.children]
    return all_of(parts) if node.mode == "all" else any_of(parts)


def rule_conditions(node: Node) -> Iterator[Condition]:
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from rule_conditions(node.child)
    else:
        for child in node.children:
            yield from rule_conditions(child)


# ------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a text ({_shown(value)})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
