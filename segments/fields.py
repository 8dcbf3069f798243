"""The fields a segment rule can test: the one place a rule field is declared. Pure Python.

A field is a `FieldSpec`: its name in rules, its type (which fixes the operators and how a
value is parsed), where its value lives (`source`) and what the compiler reads (`key`, or
for a computed feature its `feature` recipe). Validation (segments.rules) and the rule
builder read the spec; the compiler (segments.compile) reads `source` and `feature`, so a
field built from an existing recipe needs nothing outside this module and its test.

Custom attributes (`attributes.<name>`) come from AttributeDefinition rows, and the model
and segment choices from the database: segments.selectors.field_registry adds those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

TYPES = ("text", "integer", "number", "boolean", "date", "datetime", "segment")
OPERATORS = (
    "eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between", "contains", "starts_with",
    "is_null", "within_last_days", "before", "after",
)
_ORDERED = ("lt", "lte", "gt", "gte", "between")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "contains", "starts_with", "is_null"),
    "integer": ("eq", "ne", "in", "not_in", *_ORDERED, "is_null"),
    "number": ("eq", "ne", "in", "not_in", *_ORDERED, "is_null"),
    "boolean": ("eq", "ne", "is_null"),
    "date": ("eq", "ne", *_ORDERED, "before", "after", "within_last_days", "is_null"),
    # Equality on an instant is never what a marketer means; ranges are.
    "datetime": (*_ORDERED, "before", "after", "within_last_days", "is_null"),
    "segment": ("eq", "ne", "in", "not_in"),
}
OPERATOR_HELP = {
    "eq": {"label": "is", "value": "one value"},
    "ne": {"label": "is not (or is empty)", "value": "one value"},
    "in": {"label": "is one of", "value": "a list"},
    "not_in": {"label": "is none of (or is empty)", "value": "a list"},
    "lt": {"label": "less than", "value": "one value"},
    "lte": {"label": "at most", "value": "one value"},
    "gt": {"label": "more than", "value": "one value"},
    "gte": {"label": "at least", "value": "one value"},
    "between": {"label": "between (inclusive)", "value": "[low, high]"},
    "contains": {"label": "contains (any case)", "value": "text"},
    "starts_with": {"label": "starts with (any case)", "value": "text"},
    "is_null": {"label": "is empty", "value": "true or false"},
    "within_last_days": {"label": "within the last N days", "value": "days"},
    "before": {"label": "before", "value": "a date"},
    "after": {"label": "after", "value": "a date"},
}
ATTRIBUTE_TYPES = {"boolean": "boolean", "integer": "integer", "number": "number", "date": "date", "text": "text"}
MAX_WINDOW_DAYS = 3650
SEGMENT_FIELD = "segment"
MAX_NUMBER = 1e15  # past this a number is a mistake, and loses precision as a float


@dataclass(frozen=True)
class ArgSpec:
    """A parameter of a field, such as the window of "orders in the last N days"."""

    type: str  # "integer" or "text"
    label: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple = ()  # allowed values; empty: any value of the type
    required: bool = True

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.label:
            out["label"] = self.label
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Feature:
    """How a computed field is measured from the customer's history before `now`.

    `measure` is one of the compiler's recipes: "count" or "sum" (of the amount) of `rows`
    ("orders" or "events"), "days_since_last" order, or "tenure" (days since signup, or the
    first order). The field's args narrow the rows: "days" is the window [now - days, now),
    "kind" an event kind.
    """

    measure: str
    rows: str = "orders"


@dataclass(frozen=True)
class FieldSpec:
    """One field a rule can test. `source` tells the compiler where its value lives:
    customer (a column), attribute (a key of Customer.attributes), feature (computed from
    orders / events by its `feature` recipe), model (a model's score or label), segment
    (membership)."""

    name: str
    type: str
    source: str
    label: str = ""
    ops: tuple[str, ...] = ()  # empty: every operator of the type
    args: Mapping[str, ArgSpec] = field(default_factory=dict)
    values: tuple = ()  # known values, for a picker; not a constraint
    key: str = ""  # the attribute key, the column, or the model column: what the compiler reads
    feature: Feature | None = None
    picker: bool = False  # the builder lists the column's distinct values (when few)

    @property
    def operators(self) -> tuple[str, ...]:
        return self.ops or OPS_BY_TYPE[self.type]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "label": self.label or self.name, "type": self.type,
            "source": self.source, "operators": list(self.operators),
        }
        if self.args:
            out["args"] = {name: spec.describe() for name, spec in self.args.items()}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class Registry:
    """What a rule may reference, as the database knows it at validation time.

    `segments` maps each segment id to the ids its own rule references (empty for model
    segments), which is all cycle detection needs; `segment_names` is for messages.
    """

    fields: Mapping[str, FieldSpec]
    segments: Mapping[int, frozenset[int]] = field(default_factory=dict)
    segment_names: Mapping[int, str] = field(default_factory=dict)


# ------------------------------------------------------------------- declarations

_DAYS = ArgSpec("integer", "days", minimum=1, maximum=MAX_WINDOW_DAYS)
_EVENT_KIND = ArgSpec("text", "event kind")
_ORDERED_NULL = ("lt", "lte", "gt", "gte", "between", "is_null")
_COUNT_OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between")
_AMOUNT_OPS = ("lt", "lte", "gt", "gte", "between")

# Customer columns: the field name is the column.
CUSTOMER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("external_id", "text", "customer", "External id", key="external_id"),
    FieldSpec("email", "text", "customer", "Email", key="email"),
    FieldSpec("name", "text", "customer", "Name", key="name"),
    FieldSpec("country", "text", "customer", "Country", key="country", picker=True),
    FieldSpec("time_zone", "text", "customer", "Time zone", key="time_zone", picker=True),
    FieldSpec("signup_date", "date", "customer", "Signup date", key="signup_date"),
    FieldSpec("created_at", "datetime", "customer", "Added to offerlab", key="created_at"),
)

# Computed from orders and events exactly as customers.features computes them.
FEATURE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("recency_days", "number", "feature", "Days since the last order", ops=_ORDERED_NULL,
              feature=Feature("days_since_last")),
    FieldSpec("frequency", "integer", "feature", "Orders (all time)", ops=_COUNT_OPS, feature=Feature("count")),
    FieldSpec("monetary", "number", "feature", "Spend (all time)", ops=_AMOUNT_OPS, feature=Feature("sum")),
    FieldSpec("tenure_days", "number", "feature", "Days since signup (or first order)", ops=_ORDERED_NULL,
              feature=Feature("tenure")),
    FieldSpec("orders_in_last_days", "integer", "feature", "Orders in the last N days", ops=_COUNT_OPS,
              args={"days": _DAYS}, feature=Feature("count")),
    FieldSpec("spend_in_last_days", "number", "feature", "Spend in the last N days", ops=_AMOUNT_OPS,
              args={"days": _DAYS}, feature=Feature("sum")),
    # `values` (the event kinds seen) are filled in by the registry for the picker.
    FieldSpec("events_in_last_days", "integer", "feature", "Events of a kind in the last N days", ops=_COUNT_OPS,
              args={"kind": _EVENT_KIND, "days": _DAYS}, feature=Feature("count", rows="events")),
)

# A scored model's output; the "model" argument's choices are the scored model names.
MODEL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("model_score", "number", "model", "Model score", ops=_ORDERED_NULL,
              args={"model": ArgSpec("text", "model")}, key="score"),
    FieldSpec("model_label", "text", "model", "Model label (cluster, tier)", ops=("eq", "ne", "in", "not_in", "is_null"),
              args={"model": ArgSpec("text", "model")}, key="label"),
)

MEMBERSHIP_FIELD = FieldSpec(SEGMENT_FIELD, "segment", "segment", "Member of segment")


def attribute_field(name: str, kind: str, values: tuple = ()) -> FieldSpec:
    """The field for a custom attribute declared as `kind` (unknown kinds compare as text)."""
    return FieldSpec(f"attributes.{name}", ATTRIBUTE_TYPES.get(kind, "text"), "attribute", name, values=values,
                     key=name)


# ------------------------------------------------------------------- typed values


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) and abs(value) <= MAX_NUMBER) or (
        isinstance(value, float) and math.isfinite(value) and abs(value) <= MAX_NUMBER
    )


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601; a bare date is midnight UTC, a time without a zone is UTC."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
