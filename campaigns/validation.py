"""Checks on what a marketer sends in, before it reaches the database or a mail header:
each failure is a CampaignError that names the field."""

from __future__ import annotations

from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

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
