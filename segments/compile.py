"""A validated rule tree (segments.rules) -> one Django ORM filter on Customer.

Every condition becomes a Q that is TRUE or FALSE for each customer, never SQL NULL: a
comparison is guarded by "the value is there", so `not {...}`, `ne` and `not_in` are the
exact complement of their positive form and a missing attribute never makes a customer
vanish from both a rule and its negation.

Computed features follow customers.features exactly (orders and events strictly before
`now`, windows `[now - N days, now)`), so a rule and a model trained on the same features
agree. They compile to EXISTS (a window has an order) or to EXISTS (SELECT ... GROUP BY
customer_id HAVING ...) (a count or sum past a threshold), each correlated on the customer id,
so PostgreSQL runs them as semi / anti joins or index range probes on (customer_id, time):
one SQL statement, linear in the base. When zero itself satisfies the condition ("fewer
than 3 orders"), the query asks for the complement and negates it, so customers without
any order are counted.

Field names only ever come from the registry (fields.FieldSpec.key and .feature), and attribute keys
and values go to the database as bound parameters.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import (
    Exact, GreaterThan, GreaterThanOrEqual, IContains, In, IsNull, IStartsWith, LessThan, LessThanOrEqual,
)

from customers.models import Customer, Event, Order

from . import rules
from .fields import FieldSpec
from .models import Membership, ModelScore, SegmentModel

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
}
_DJANGO_LOOKUP = {"eq": "exact", "lt": "lt", "lte": "lte", "gt": "gt", "gte": "gte", "in": "in",
                  "contains": "icontains", "starts_with": "istartswith"}
_LOOKUP_CLASS = {"eq": Exact, "lt": LessThan, "lte": LessThanOrEqual, "gt": GreaterThan,
                 "gte": GreaterThanOrEqual, "in": In, "contains": IContains, "starts_with": IStartsWith}
# before / after are the words a marketer uses for dates; they are lt / gt.
_ALIASES = {"before": "lt", "after": "gt"}
_MIRROR = {"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}

TRUE = Q(pk__isnull=False)
FALSE = Q(pk__isnull=True)


class ModelResolver:
    """Which model version a rule's `model_score` / `model_label` reads: the newest scored
    version of that name, looked up once per compilation."""

    def __init__(self) -> None:
        self.cache: dict[str, int | None] = {}

    def __call__(self, name: str) -> int | None:
        if name not in self.cache:
            found = (SegmentModel.objects.filter(name=name, scored_at__isnull=False)
                     .order_by("-version").values_list("id", flat=True).first())
            self.cache[name] = found
        return self.cache[name]


def rule_q(node: rules.Node, *, now: datetime, models: Callable[[str], int | None] | None = None) -> Q:
    """The filter on Customer for a validated rule, evaluated as of `now`.

    Every subquery is correlated on the customer, so restricting the customers (a
    preview's sample of id blocks) restricts all the work with them.
    """
    compiler = _Compiler(now, models or ModelResolver())
    return rules.rule_fold(node, condition=compiler.condition, all_of=_all, any_of=_any, negate=_negate)


def _all(parts: list[Q]) -> Q:
    return reduce(operator.and_, parts) if parts else TRUE


def _any(parts: list[Q]) -> Q:
    return reduce(operator.or_, parts) if parts else FALSE


def _negate(q: Q) -> Q:
    return ~q


class _Compiler:
    def __init__(self, now: datetime, models: Callable[[str], int | None]):
        self.now = now
        self.today = now.astimezone(dt_timezone.utc).date()
        self.models = models

    def condition(self, c: rules.Condition) -> Q:
        op = _ALIASES.get(c.op, c.op)
        positive = rules.NEGATIONS.get(op)
        if positive is not None:
            return ~self.condition(rules.Condition(c.field, positive, c.value, c.args, c.path))
        handler = getattr(self, f"_{c.field.source}")
        return handler(c.field, op, c.value, c.args)

    # ---------------------------------------------------------------- plain values

    def _compare(self, kind: str, op: str, value: Any, *, is_null: Q, lookup: Callable) -> Q:
        """`lookup(name, value)` builds one comparison; `is_null` says the value is missing."""
        if op == "is_null":
            return is_null if value else ~is_null
        if op == "within_last_days":
            op, value = "gte", self._days_ago(kind, value)
        if op == "between":
            low, high = value
            q = lookup("gte", low) & lookup("lte", high)
        else:
            q = lookup(op, value)
        return ~is_null & q

    def _days_ago(self, kind: str, days: int) -> date | datetime:
        return self.today - timedelta(days=days) if kind == "date" else self.now - timedelta(days=days)

    def _customer(self, spec: FieldSpec, op: str, value: Any, args: dict) -> Q:
        column = spec.key  # a Customer field name from the registry, never user text

        def lookup(name: str, v: Any) -> Q:
            if isinstance(v, tuple):
                v = list(v)
            return Q(**{f"{column}__{_DJANGO_LOOKUP[name]}": v})

        if spec.type == "text":
            # Our text columns are NOT NULL with "" for unknown: "is null" means blank.
            is_null = Q(**{column: ""})
        else:
            is_null = Q(**{f"{column}__isnull": True})
        return self._compare(spec.type, op, value, is_null=is_null, lookup=lookup)

    def _attribute(self, spec: FieldSpec, op: str, value: Any, args: dict) -> Q:
        key = spec.key  # a key of Customer.attributes; bound as a parameter by Django
        # Resolved against Customer up front, so each lookup prepares its value exactly
        # as `attributes__<key>__<lookup>` would (JSON-typed), without ever parsing the
        # key as a lookup path: a key like "a__contains" stays one key.
        text = _resolved(KeyTextTransform(key, "attributes"))
        is_null = Q(IsNull(text, True))
        if spec.type in ("integer", "number", "boolean"):
            # Compare as JSON values: numbers numerically, true/false as booleans, and a
            # bad value cannot make the query fail the way a CAST would.
            json_value = _resolved(KeyTransform(key, "attributes"))

            def lookup(name: str, v: Any) -> Q:
                return Q(json_value.get_lookup(_DJANGO_LOOKUP[name])(json_value, list(v) if isinstance(v, tuple) else v))
        else:
            # Text and dates (stored as YYYY-MM-DD, which sorts as text) compare as text.
            def lookup(name: str, v: Any) -> Q:
                if isinstance(v, tuple):
                    v = [x.isoformat() if isinstance(x, date) else x for x in v]
                elif isinstance(v, date):
                    v = v.isoformat()
                return Q(_LOOKUP_CLASS[name](text, v))

        return self._compare(spec.type, op, value, is_null=is_null, lookup=lookup)

    # ------------------------------------------------------------ computed features

    def _orders(self, days: int | None = None) -> QuerySet:
        orders = Order.objects.filter(ordered_at__lt=self.now)
        if days is not None:
            orders = orders.filter(ordered_at__gte=self.now - timedelta(days=days))
        return orders

    def _exists(self, queryset: QuerySet) -> Q:
        return Q(Exists(queryset.filter(customer_id=OuterRef("pk"))))

    def _feature(self, spec: FieldSpec, op: str, value: Any, args: dict) -> Q:
        feature = spec.feature
        if feature.measure == "days_since_last":
            return self._last_or_first(op, value, last=True)
        if feature.measure == "tenure":
            return self._tenure(op, value)
        if feature.rows == "events":
            rows = Event.objects.filter(occurred_at__lt=self.now)
            if "days" in args:
                rows = rows.filter(occurred_at__gte=self.now - timedelta(days=args["days"]))
            if "kind" in args:
                rows = rows.filter(kind=args["kind"])
        else:
            rows = self._orders(args.get("days"))
        if feature.measure == "sum":
            return self._aggregate(rows, Sum("amount"), op, value, decimal=True)
        return self._aggregate(rows, Count("id"), op, value)

    def _aggregate(self, rows: QuerySet, aggregate: Any, op: str, value: Any, *, decimal: bool = False) -> Q:
        """A count or a sum over the customer's rows, which is 0 without rows."""
        if op == "is_null":
            return FALSE if value else TRUE  # a count or a sum always has a value
        if decimal:
            value = tuple(Decimal(str(v)) for v in value) if isinstance(value, tuple) else Decimal(str(value))
        holds = _holds(op, value)
        if not decimal and holds is not None:
            # "at least one" / "none": plain (anti) EXISTS, no grouping needed.
            if op in ("gte", "gt") and not holds(0) and holds(1):
                return self._exists(rows)
            if op in ("eq", "lte", "lt") and holds(0) and not holds(1):
                return ~self._exists(rows)

        # A correlated EXISTS over the customer's own rows (an index range on
        # (customer_id, time)): linear in customers whatever the plan, where
        # `id [NOT] IN (GROUP BY ...)` can turn quadratic when the planner cannot hash it.
        test = self._value_test("_agg", op, value)
        grouped = rows.filter(customer_id=OuterRef("pk")).values("customer_id").annotate(_agg=aggregate)
        if holds is not None and holds(0):
            # Customers without rows qualify: keep everyone but those whose rows fail.
            return ~Q(Exists(grouped.filter(~test)))
        return Q(Exists(grouped.filter(test)))

    def _value_test(self, name: str, op: str, value: Any) -> Q:
        if op == "between":
            return Q(**{f"{name}__gte": value[0], f"{name}__lte": value[1]})
        if op == "in":
            return Q(**{f"{name}__in": list(value)})
        return Q(**{f"{name}__{_DJANGO_LOOKUP[op]}": value})

    def _last_or_first(self, op: str, value: Any, *, last: bool) -> Q:
        """Conditions on days since the last order (or, for tenure, the first), answered by
        whether an order exists in a window: an index range probe instead of a MAX."""
        orders = self._orders()
        any_order = self._exists(orders)
        if op == "is_null":
            return ~any_order if value else any_order
        if op == "between":
            low, high = value
            return self._last_or_first("gte", low, last=last) & self._last_or_first("lte", high, last=last)
        bound = self.now - timedelta(days=float(value))
        if last:
            # days since last < d  <=>  some order after now - d
            within = {"lt": "gt", "lte": "gte"}
            if op in within:
                return self._exists(orders.filter(**{f"ordered_at__{within[op]}": bound}))
            # days since last > d  <=>  orders, but none at or after now - d
            return any_order & ~self._exists(orders.filter(**{f"ordered_at__{'gte' if op == 'gt' else 'gt'}": bound}))
        # days since first > d  <=>  some order before now - d
        before = {"gt": "lt", "gte": "lte"}
        if op in before:
            return self._exists(orders.filter(**{f"ordered_at__{before[op]}": bound}))
        return any_order & ~self._exists(orders.filter(**{f"ordered_at__{'lte' if op == 'lt' else 'lt'}": bound}))

    def _tenure(self, op: str, value: Any) -> Q:
        """Days since signup, or since the first order when the signup date is unknown."""
        no_signup = Q(signup_date__isnull=True)
        if op == "is_null":
            first = self._last_or_first("is_null", True, last=False)
            return no_signup & first if value else ~(no_signup & first)
        if op == "between":
            low, high = value
            return self._tenure("gte", low) & self._tenure("lte", high)
        # tenure = now - midnight(signup) (UTC); tenure op d  <=>  midnight(signup) mirror(op) now - d
        bound = self.now - timedelta(days=float(value))
        signup = Q(**{f"signup_date__{_MIRROR[op]}": _date_bound(_MIRROR[op], bound)})
        return (~no_signup & signup) | (no_signup & self._last_or_first(op, value, last=False))

    # ------------------------------------------------------------ models, segments

    def _model(self, spec: FieldSpec, op: str, value: Any, args: dict) -> Q:
        model_id = self.models(args["model"])
        if model_id is None:
            return FALSE if op != "is_null" or not value else TRUE
        scores = ModelScore.objects.filter(model_id=model_id)
        column = "score" if spec.key == "score" else "label"
        if column == "label":
            scores = scores.exclude(label="")  # an unlabelled score has no label
        if op == "is_null":
            scored = self._exists(scores)
            return ~scored if value else scored
        if op == "between":
            test = Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
        else:
            v = list(value) if isinstance(value, tuple) else value
            test = Q(**{f"{column}__{_DJANGO_LOOKUP[op]}": v})
        return self._exists(scores.filter(test))

    def _segment(self, spec: FieldSpec, op: str, value: Any, args: dict) -> Q:
        ids = list(value) if isinstance(value, tuple) else [value]
        # The other segment's current version, read in the same statement: never a
        # half-switched view of it.
        members = Membership.objects.filter(segment_id__in=ids, version=F("segment__current_version"))
        return self._exists(members)


def _resolved(expression: Any) -> Any:
    return expression.resolve_expression(Customer.objects.all().query)


def _holds(op: str, value: Any) -> Callable[[Any], bool] | None:
    if op in _CMP:
        return lambda x: _CMP[op](x, value)
    if op == "between":
        return lambda x: value[0] <= x <= value[1]
    if op == "in":
        return lambda x: x in value
    return None


def _date_bound(op: str, instant: datetime) -> date:
    """The date d such that `midnight(signup) op instant` <=> `signup op d` (UTC)."""
    instant = instant.astimezone(dt_timezone.utc)
    day = instant.date()
    at_midnight = instant.time() == time(0)
    if op in ("lt", "gte"):
        # midnight(s) < t  <=>  s < ceil(t);  midnight(s) >= t  <=>  s >= ceil(t)
        return day if at_midnight else day + timedelta(days=1)
    return day  # midnight(s) <= t <=> s <= floor(t); > likewise
