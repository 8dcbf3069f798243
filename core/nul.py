"""NUL bytes in request values: PostgreSQL cannot store or compare them, so a search, filter,
rule value or name holding one is refused up front with a 400 naming the field, not a 500.

The query string and form bodies are checked by core.middleware.NulByteMiddleware; API bodies
by the parsers below (DEFAULT_PARSER_CLASSES). A view that reports NUL bytes its own way (the
customers batch rejects only the row) sets `nul_bytes_allowed = True`.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ValidationError

NUL = "\x00"
NUL_MESSAGE = "contains a NUL byte (\\x00), which cannot be stored or searched: remove it"


def nul_paths(data: Any, path: str = "") -> list[str]:
    """Where NUL bytes sit in parsed JSON or form data: field paths like rule.conditions.0.value."""
    found: list[str] = []
    if isinstance(data, str):
        if NUL in data:
            found.append(path or "body")
    elif hasattr(data, "lists"):  # a QueryDict: every value of every key
        for key, values in data.lists():
            name = _join(path, key)
            found += [name] if NUL in str(key) else nul_paths(values, name)
    elif isinstance(data, dict):
        for key, value in data.items():
            name = _join(path, str(key))
            found += [name] if NUL in str(key) else nul_paths(value, name)
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found += nul_paths(value, _join(path, str(index)) if isinstance(value, (dict, list, tuple)) else path)
    return list(dict.fromkeys(found))


def nul_errors(data: Any) -> dict[str, str]:
    return {name.replace(NUL, "\\x00"): NUL_MESSAGE for name in nul_paths(data)}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _refuse(data: Any, parser_context: dict | None) -> Any:
    view = (parser_context or {}).get("view")
    if not getattr(view, "nul_bytes_allowed", False):
        errors = nul_errors(data)
        if errors:
            raise ValidationError(errors)
    return data


class JSONParser(parsers.JSONParser):
    """Also refuses a body that is not a JSON object: every endpoint takes named fields, and
    a list or a scalar would otherwise reach `dict(request.data)` as a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["the body must be a JSON object of fields"]})
        return _refuse(data, parser_context)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse(super().parse(stream, media_type, parser_context), parser_context)


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse(parsed.data, parser_context)  # the fields; an uploaded file's bytes are its own business
        return parsed
