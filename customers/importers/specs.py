"""What each kind of file holds: its fields, their value checks and staging types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import available_timezones

from core import parsing
from core.parsing import ValueProblem

from ..models import Customer, Event, Order

TIME_ZONES = available_timezones()


@dataclass
class Column:
    name: str  # our field name, and the default source column
    parse: Callable[[str], object]
    required: bool = False
    sql_type: str = "text"
    default: object = ""
    # A chunk's values at once, none of them blank: `parse` of each, or ValueProblem when
    # any is wrong (the row-by-row path then says which and why). Optional: a speed-up only.
    parse_many: Callable[[list[str]], list] | None = None


@dataclass
class Spec:
    kind: str
    model: type
    key: list[str]  # the conflict target in the real table
    columns: list[Column]
    extra_column: str  # where unmapped columns go: attributes or properties
    customer_ref: bool  # rows name a customer by external id


def _time_zone(text: str) -> str:
    value = text.strip()
    if value not in TIME_ZONES:
        raise ValueProblem(f"{text!r} is not an IANA time zone (e.g. Europe/Paris)")
    return value


def _amount(text: str):
    value = parsing.parse_decimal(text)
    if value < 0:
        raise ValueProblem(f"{text!r} is negative; refunds belong in their own column or file")
    if abs(value) >= 10**10:
        raise ValueProblem(f"{text!r} is too large for an order amount")
    return value


def _currency(text: str) -> str:
    value = text.strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise ValueProblem(f"{text!r} is not a 3-letter currency code")
    return value


def _bounded(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if len(value) > limit:
            raise ValueProblem(f"is {len(value)} characters long, at most {limit} allowed")
        return value

    return parse


def _bounded_many(limit: int) -> Callable[[list[str]], list[str]]:
    def parse_many(texts: list[str]) -> list[str]:
        values = [text.strip() for text in texts]
        if max(map(len, values), default=0) > limit:
            raise ValueProblem("a value is too long")
        return values

    return parse_many


def _emails_many(texts: list[str]) -> list[str]:
    values = [text.strip() for text in texts]
    if not all(map(parsing.EMAIL_RE.match, values)):
        raise ValueProblem("a value is not an email address")
    return values


def _time_zones_many(texts: list[str]) -> list[str]:
    values = [text.strip() for text in texts]
    if not TIME_ZONES.issuperset(values):
        raise ValueProblem("a value is not a time zone")
    return values


SPECS = {
    "customers": Spec(
        kind="customers",
        model=Customer,
        key=["external_id"],
        columns=[
            Column("external_id", _bounded(128), required=True, parse_many=_bounded_many(128)),
            Column("email", lambda t: parsing.parse_email(t) if t.strip() else "", parse_many=_emails_many),
            Column("name", _bounded(200), parse_many=_bounded_many(200)),
            Column("country", _bounded(64), parse_many=_bounded_many(64)),
            Column("time_zone", lambda t: _time_zone(t) if t.strip() else "UTC", default="UTC",
                   parse_many=_time_zones_many),
            Column("signup_date", parsing.parse_date, sql_type="date", default=None, parse_many=parsing.parse_dates),
        ],
        extra_column="attributes",
        customer_ref=False,
    ),
    "orders": Spec(
        kind="orders",
        model=Order,
        key=["external_id"],
        columns=[
            Column("external_id", _bounded(128), required=True),
            Column("customer", _bounded(128), required=True),
            Column("amount", _amount, required=True, sql_type="numeric(12,2)"),
            Column("currency", _currency, default="USD"),
            Column("ordered_at", parsing.parse_datetime, required=True, sql_type="timestamptz"),
        ],
        extra_column="properties",
        customer_ref=True,
    ),
    "events": Spec(
        kind="events",
        model=Event,
        key=["customer_id", "kind", "occurred_at"],
        columns=[
            Column("customer", _bounded(128), required=True),
            Column("kind", _bounded(64), required=True),
            Column("occurred_at", parsing.parse_datetime, required=True, sql_type="timestamptz"),
        ],
        extra_column="properties",
        customer_ref=True,
    ),
}
