"""A rule read as a sentence, and its problems named by condition. Pure (no Django).

The builder shows operators by these names, the segment page shows a saved rule as a
sentence ("Customers whose Country is one of US, GB and whose VIP is true"), and a problem
at `rule.all[1].value` reads "Condition 2 (Country): ...", the way Klaviyo and Customer.io
speak of a segment's conditions. The JSON paths stay in the API, where programs read them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

OP_NAMES = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is not one of",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is more than",
    "gte": "is at least",
    "between": "is between",
    "contains": "contains",
    "starts_with": "starts with",
    "is_null": "is empty",
    "within_last_days": "is within the last",
    "before": "is before",
    "after": "is after",
}
_INDEX = re.compile(r"\[(\d+)\]")


def op_name(op: str) -> str:
    return OP_NAMES.get(op, op)


def _value_words(op: str, value: Any) -> str:
    if op == "is_null":
        return ""
    if op == "within_last_days":
        return f"{value} days"
    if op == "between" and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{_scalar(value[0])} and {_scalar(value[1])}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return str(value)


def _args_words(args: Mapping[str, Any] | None) -> str:
    if not args:
        return ""
    parts = []
    for name, value in args.items():
        parts.append(f"in the last {value} days" if name == "days" else f"{name} {value}")
    return " (" + ", ".join(parts) + ")"


def condition_sentence(condition: Mapping[str, Any], labels: Mapping[str, str], *, negated: bool = False) -> str:
    name = condition.get("field", "?")
    label = labels.get(name, name)
    op = condition.get("op", "eq")
    if op == "is_null" and condition.get("value") is False:
        words = "is not empty"
    else:
        words = op_name(op)
    value = _value_words(op, condition.get("value"))
    text = f"{label}{_args_words(condition.get('args'))} {words}" + (f" {value}" if value else "")
    return f"not ({text})" if negated else text


def rule_sentence(rule: Any, labels: Mapping[str, str]) -> str:
    """"Customers whose ..." for a rule tree; nested groups are bracketed."""
    if not rule:
        return "Every customer"
    return "Customers whose " + _node(rule, labels, top=True)


def _node(node: Any, labels: Mapping[str, str], *, top: bool = False) -> str:
    if not isinstance(node, Mapping):
        return str(node)
    if "not" in node and len(node) == 1:
        inner = node["not"]
        if isinstance(inner, Mapping) and "field" in inner:
            return condition_sentence(inner, labels, negated=True)
        return f"not ({_node(inner, labels)})"
    for mode, joiner in (("all", " and whose "), ("any", " or whose ")):
        if mode in node and len(node) == 1 and isinstance(node[mode], list):
            parts = [_node(child, labels) for child in node[mode]]
            text = joiner.join(parts) if top else (" and " if mode == "all" else " or ").join(parts)
            return text if top or len(parts) < 2 else f"({text})"
    if "field" in node:
        return condition_sentence(node, labels)
    return str(node)


def condition_number(path: str) -> str:
    """`rule.all[1].value` -> "Condition 2"; `rule.all[0].any[2].op` -> "Condition 1.3"."""
    indexes = [int(i) + 1 for i in _INDEX.findall(path)]
    return "Condition " + ".".join(map(str, indexes)) if indexes else "The rule"


def _condition_at(rule: Any, path: str) -> Mapping[str, Any] | None:
    node = rule
    for key, index in re.findall(r"\.?(all|any|not)(?:\[(\d+)\])?", path.removeprefix("rule")):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return None
            node = node[int(index)]
    if isinstance(node, Mapping) and "not" in node and isinstance(node["not"], Mapping):
        node = node["not"]
    return node if isinstance(node, Mapping) and "field" in node else None


_QUOTED_OP = re.compile(r"'(" + "|".join(OP_NAMES) + r")'")
_OP_LIST = re.compile(r"(use one of |; one of )((?:\w+, )*\w+)$")


def _builder_message(message: str, name: str, label: str) -> str:
    """A validator message (written for the API, in its field and operator codes) in the
    builder's words: the field by its label, operators by their names. The condition is
    already named in front ("Condition 2 (vip): ..."), so "for attributes.vip" goes."""
    text = re.sub(rf" for {re.escape(name)}(?=, got\b)", "", message)
    text = text.replace(name, label)
    text = _QUOTED_OP.sub(lambda m: f"\u201c{op_name(m.group(1))}\u201d", text)
    text = _OP_LIST.sub(lambda m: m.group(1) + ", ".join(f"\u201c{op_name(o)}\u201d" for o in m.group(2).split(", ")),
                        text)
    first = text.split(" ", 1)[0]
    if first in OP_NAMES:  # "is_null takes true or false"
        text = f"\u201c{op_name(first)}\u201d" + text[len(first):]
    return text.replace("needs low <= high", "needs the lower value first")


def error_words(errors: Sequence[Mapping[str, str]], rule: Any, labels: Mapping[str, str]) -> list[str]:
    """Each {path, message} as a sentence naming its condition and field, in the words the
    builder shows (field labels, operator names), never the rule's JSON names."""
    out = []
    for error in errors:
        path, message = error.get("path", ""), error.get("message", "")
        condition = _condition_at(rule, path)
        where = condition_number(path)
        name = condition.get("field") if condition is not None else None
        if isinstance(name, str) and name:
            label = labels.get(name, name)
            where += f" ({label})"
            message = _builder_message(message, name, label)
        text = message[0].upper() + message[1:] if message else "It is not valid"
        out.append(f"{where}: {text}")
    return out
