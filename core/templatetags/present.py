"""Template filters that spell numbers and times for people, through core.formatting: the
same spelling as exports and commands. Loaded everywhere (settings: TEMPLATES builtins)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from core import formatting

register = template.Library()


@register.filter
def when(value) -> str:
    """A moment, in the site's time zone, the one way every page writes one:
    "2 Dec 2026, 14:05 UTC". A date alone reads "2 Dec 2026"."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.timezone.utc)
        local = timezone.localtime(value)
        return formatting.moment(local, local.tzname() or "")
    return formatting.day(value)


def _moment(value):
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return timezone.make_aware(value, dt.timezone.utc) if timezone.is_naive(value) else value


@register.filter
def duration(value) -> str:
    """Seconds in words: 125 -> "2 minutes 5 seconds"."""
    if value is None or value == "":
        return formatting.NA
    try:
        return formatting.duration(float(value))
    except (TypeError, ValueError):
        return str(value)


@register.filter
def took(start, end=None) -> str:
    """From one moment to another (to now when `end` is missing), in words:
    {{ job.started_at|took:job.finished_at }} -> "2 minutes 5 seconds"."""
    begin, finish = _moment(start), _moment(end) if end else timezone.now()
    if begin is None or finish is None:
        return formatting.NA
    return formatting.duration(max(0.0, (finish - begin).total_seconds()))


@register.filter
def shown(value) -> str:
    """A stored value as a person reads it: True -> "yes", None -> "—", 1234.5 -> "1,234.50".
    Whole numbers stay as stored (an attribute may be a year or a code: no separators)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else formatting.number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(shown(v) for v in value)
    return str(value)


@register.filter
def day(value) -> str:
    """The date part only: "2 Dec 2026"."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return formatting.day(value)


@register.filter
def count(value) -> str:
    """1234567 -> "1,234,567"."""
    if value is None or value == "":
        return formatting.NA
    try:
        return formatting.count(int(value))
    except (TypeError, ValueError):
        return str(value)


def _number_filter(spell):
    def apply(value, arg=None):
        if value is None or value == "":
            return formatting.NA
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return spell(number) if arg is None else spell(number, int(arg))
    apply.__name__ = spell.__name__
    apply.__doc__ = spell.__doc__
    return apply


register.filter("number", _number_filter(formatting.number))
register.filter("signed", _number_filter(formatting.signed))
register.filter("percent", _number_filter(formatting.percent))
register.filter("points", _number_filter(formatting.points))
register.filter("lift", _number_filter(formatting.lift))
register.filter("pvalue", _number_filter(formatting.p_value))
register.filter("pclause", _number_filter(formatting.p_clause))


@register.filter
def money(value, currency: str = "") -> str:
    """1234.5|money:"EUR" -> "1,234.50 EUR"."""
    if value is None or value == "":
        return formatting.NA
    try:
        return formatting.money(float(value), currency or "")
    except (TypeError, ValueError):
        return str(value)


@register.filter
def method(value) -> str:
    """The test an engine ran, by name: two_proportion_ztest -> "two-proportion z-test"."""
    return formatting.method_name(value)


@register.filter
def metric_term(value) -> str:
    """roc_auc -> "ROC AUC (how well the score ranks...)"."""
    return formatting.metric_term(value)


NAV = [
    ("Dashboard", "/"),
    ("Customers", "/customers/"),
    ("Imports", "/customers/imports/"),
    ("Segments", "/segments/"),
    ("Models", "/segments/models/"),
    ("Campaigns", "/campaigns/"),
    ("Automations", "/automations/"),
    ("Outbox", "/campaigns/outbox/"),
    ("Experiments", "/experiments/"),
]


def nav_current(path: str) -> str:
    """The section a path belongs to: the longest prefix among the nav's links."""
    matches = [href for _, href in NAV if path == href or (href != "/" and path.startswith(href))]
    return max(matches, key=len, default="")


@register.simple_tag(takes_context=True)
def nav_items(context) -> list[dict]:
    request = context.get("request")
    current = nav_current(request.path if request is not None else "")
    return [{"label": label, "href": href, "current": href == current} for label, href in NAV]


@register.filter
def metric_explained(value) -> str:
    """roc_auc -> "how well the score ranks ... (0.5 is a coin toss, 1 is perfect)"."""
    return formatting.metric_explained(value)
