"""Checks on what a marketer sends in, before it reaches the database or a mail header:
each failure is a CampaignError that names the field."""

from __future__ import annotations

from datetime import time as dtime
from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from experiments.models import MAX_ATTRIBUTION_DAYS  # ten years, as experiments allow

from .errors import CampaignError


def lengths_check(model: type[models.Model], values: dict, prefix: str = "") -> None:
    """Each text value fits its column: PostgreSQL would refuse it with a 500 otherwise."""
    for name, value in values.items():
        limit = getattr(model._meta.get_field(name), "max_length", None)
        if limit and isinstance(value, str) and len(value) > limit:
            raise CampaignError(f"{prefix}{name}: at most {limit:,} characters (got {len(value):,})")
        if isinstance(value, str) and "\x00" in value:
            raise CampaignError(f"{prefix}{name}: contains a NUL character")


def from_email_check(value: str) -> str:
    """A From header a mail server will take as one address: no CR/LF (a header injection,
    e.g. "\\r\\nBcc: ..."), and an address, optionally with a display name."""
    value = str(value or "").strip()
    if not value:
        return ""
    if any(ch in value for ch in "\r\n\x00"):
        raise CampaignError("from_email: line breaks (CR/LF) are not allowed in an address")
    _, address = parseaddr(value)
    try:
        validate_email(address)
    except ValidationError:
        raise CampaignError(f"from_email: {value!r} is not an email address") from None
    return value


# ------------------------------------------------------------- spec fields campaigns and automations share
# One copy of each check, so a campaign's spec and an automation's refuse the same values
# with the same words.



def time_clean(value, what: str) -> dtime | None:
    if value in (None, ""):
        return None
    try:
        return dtime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(f"{what} must be a time like 21:00, not {value!r}") from None


def quiet_hours_clean(quiet) -> tuple[dtime | None, dtime | None]:
    """`quiet_hours` of a spec: {"start": "21:00", "end": "08:00"} or nothing."""
    quiet = quiet or {}
    if quiet and not isinstance(quiet, dict):
        raise CampaignError('quiet_hours is {"start": "21:00", "end": "08:00"}')
    start, end = time_clean(quiet.get("start"), "quiet_hours.start"), time_clean(quiet.get("end"), "quiet_hours.end")
    if (start is None) != (end is None):
        raise CampaignError("quiet_hours needs both start and end")
    return start, end


def frequency_cap_clean(cap) -> int | None:
    if cap in (None, ""):
        return None
    if not str(cap).isdigit() or not 1 <= int(cap) <= 1000:
        raise CampaignError("frequency_cap is a whole number of emails per 7 days, from 1 to 1,000")
    return int(cap)


def attribution_days_clean(days) -> int:
    days = days or 7
    if not str(days).isdigit() or not 1 <= int(days) <= MAX_ATTRIBUTION_DAYS:
        raise CampaignError(f"attribution_days is a whole number of days, from 1 to {MAX_ATTRIBUTION_DAYS:,}")
    return int(days)


def holdout_clean(value, of: str) -> float:
    """The control's share of `of` (the audience, the entries): 0.1 when not given."""
    try:
        holdout = float(value if value is not None else 0.1)
    except (TypeError, ValueError):
        raise CampaignError("holdout must be a number") from None
    if not 0 <= holdout < 1:
        raise CampaignError(f"holdout is a share of the {of}: at least 0, below 1")
    return holdout


def weight_clean(value, where: str) -> float:
    """A variant's weight (1 when not given); `where` prefixes the error, e.g. "variant 'a': "."""
    try:
        weight = float(value if value not in (None, "") else 1)
    except (TypeError, ValueError):
        raise CampaignError(f"{where}weight must be a number") from None
    if not weight > 0:
        raise CampaignError(f"{where}weight must be positive")
    return weight


# --------------------------------------------------------------------------- empty values

# Customer fields a template can print that may be blank in the data, and the column that
# holds each (first_name is the first word of name). email and id are never blank here.
BLANKABLE_CUSTOMER_FIELDS = {
    "name": "name", "first_name": "name", "country": "country", "time_zone": "time_zone",
    "signup_date": "signup_date", "external_id": "external_id",
}


def _placeholder(path: tuple[str, ...]) -> str:
    return "{{ " + ".".join(path) + " }}"


def _blank_condition(path: tuple[str, ...]):
    """A Q over customers for which this printed path renders as nothing; None if it never does."""
    from django.db.models import Q

    if path[1] == "attributes" and len(path) == 3:
        # A missing key is the launch check's own error (the render would fail); here:
        # present but blank. A name with "__" would read as a lookup: not counted.
        if "__" in path[2]:
            return None
        return Q(attributes__has_key=path[2]) & (Q(**{f"attributes__{path[2]}": None}) | Q(**{f"attributes__{path[2]}": ""}))
    column = BLANKABLE_CUSTOMER_FIELDS.get(path[1])
    if column is None or len(path) != 2:
        return None
    if column == "signup_date":
        return Q(signup_date__isnull=True)
    return Q(**{f"{column}__regex": r"^\s*$"})


def template_empties(campaign, compiled: dict, audience) -> tuple[list[str], list[str]]:
    """(errors, warnings) for values the templates print that would come out blank.

    A value blank for every recipient is an error: `Code {{ offer.code }}` with no offer
    once sent 361 emails reading "Code ". Blank for some recipients is a warning the
    marketer reads on the confirm step (`| default("there")` or a narrower segment fixes it).
    Offer values are the same for everyone; customer values are counted over the audience in
    one aggregate query. `compiled` maps variant name -> CompiledVariant."""
    from django.db.models import Count

    from .messages import landing_url_for, offer_code_for, offer_context

    errors: list[str] = []
    warnings: list[str] = []
    offer = campaign.offer
    # Offer values do not depend on the customer (a unique code is never blank when the
    # offer has a code mode): one context stands for all.
    offer_values = offer_context(offer, landing_url_for(offer, campaign, None), offer_code_for(offer, 0))
    customer_paths: dict[tuple[str, ...], list[str]] = {}
    for name, c in compiled.items():
        for path in sorted(c.printed_paths):
            if path[0] == "offer" and len(path) == 2:
                if str(offer_values.get(path[1]) or "").strip():
                    continue
                why = "the campaign has no offer" if offer is None else f"offer {offer.name!r} has no {path[1].replace('_', ' ')}"
                errors.append(
                    f"variant {name!r} prints {_placeholder(path)}, which is empty for every recipient ({why}): "
                    f"attach an offer with it, remove it, or write {{% if {'.'.join(path)} %}}...{{% endif %}}"
                )
            elif path[0] == "customer":
                customer_paths.setdefault(path, []).append(name)
    conditions = {path: _blank_condition(path) for path in customer_paths}
    conditions = {path: cond for path, cond in conditions.items() if cond is not None}
    if not conditions:
        return errors, warnings
    keys = {path: f"blank_{i}" for i, path in enumerate(conditions)}
    counts = audience.aggregate(
        audience_size=Count("id"), **{keys[path]: Count("id", filter=cond) for path, cond in conditions.items()}
    )
    size = counts["audience_size"]
    for path, names in customer_paths.items():
        blank = counts.get(keys.get(path, ""), 0)
        if not blank or not size:
            continue
        who = ", ".join(repr(n) for n in names)
        fix = f"{{{{ {'.'.join(path)} | default('...') }}}}"
        if blank == size:
            errors.append(
                f"variant {who} prints {_placeholder(path)}, which is empty for every one of the {size:,} recipients: "
                f"write {fix} or remove it"
            )
        else:
            example = audience.filter(conditions[path]).values_list("external_id", flat=True).first()
            warnings.append(
                f"variant {who} prints {_placeholder(path)}, which is empty for {blank:,} of {size:,} recipients "
                f"({blank / size:.1%}, e.g. customer {example}): they will read a blank; write {fix} to give them a word instead"
            )
    return errors, warnings
