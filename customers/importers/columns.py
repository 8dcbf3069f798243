"""Planning the columns: which file column feeds which field, and what type each extra column has."""

from __future__ import annotations

import re

from core import parsing

from ..models import AttributeDefinition
from .result import ImportFailed
from .specs import Spec


def columns_resolve(spec: Spec, header: list[str], mapping: dict[str, str], id_from_row: bool) -> dict[str, str]:
    """Our field name -> the file's column, for the fields the file has."""
    known = {c.name for c in spec.columns}
    unknown_targets = sorted(set(mapping) - known)
    if unknown_targets:
        raise ImportFailed(
            f"--map names unknown field(s) {', '.join(unknown_targets)}; "
            f"{spec.kind} fields are: {', '.join(sorted(known))}"
        )
    by_lower = {h.lower(): h for h in header}
    sources: dict[str, str] = {}
    for column in spec.columns:
        wanted = mapping.get(column.name, column.name)
        if wanted in header:
            sources[column.name] = wanted
        elif wanted.lower() in by_lower:
            sources[column.name] = by_lower[wanted.lower()]
    if id_from_row:
        sources.pop("external_id", None)
    missing = [
        c.name
        for c in spec.columns
        if c.required and c.name not in sources and not (id_from_row and c.name == "external_id")
    ]
    if missing:
        found = ", ".join(repr(h) for h in header[:12]) + (" ..." if len(header) > 12 else "")
        hint = ""
        if len(header) == 1 and re.search(r"[^\w\s]", header[0]):
            hint = " The header was read as a single column: is the delimiter one of , ; | or tab?"
        described = ", ".join(
            f"'{name}'" + (f" (mapped from '{mapping[name]}')" if name in mapping else "") for name in missing
        )
        extra = " or use --id-from-row" if "external_id" in missing else ""
        raise ImportFailed(
            f"the header lacks the required column {described}; found {found}.{hint} "
            f"Rename the column, map it with --map FIELD=COLUMN{extra}."
        )
    return sources


def extra_columns(spec: Spec, header: list[str], sources: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The file's extra columns to import, and those set aside with the reason why.

    A column set aside costs no row: its rows are imported without it. A customer
    attribute's name is stored in AttributeDefinition, whose limit would otherwise fail
    the whole import on PostgreSQL.
    """
    extra = [h for h in header if h not in sources.values()]
    ignored = {h: "the column has no name" for h in extra if not h}
    ignored |= {h: "the column name holds a NUL byte" for h in extra if "\x00" in h}
    if spec.kind == "customers":
        limit = AttributeDefinition._meta.get_field("name").max_length
        ignored |= {
            h: f"the column name is {len(h)} characters long, at most {limit} allowed"
            for h in extra
            if len(h) > limit
        }
    return [h for h in extra if h not in ignored], ignored


def extra_types(spec: Spec, extra: list[str], head: list, overrides: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The type of every extra column, and the columns this import typed (not stored before).

    Stored definitions win, then overrides, then inference from the sample rows, where one
    odd value does not make a column text: its row is rejected instead, naming the type.
    """
    bad = {k: v for k, v in overrides.items() if v not in parsing.ATTRIBUTE_PARSERS}
    if bad:
        raise ImportFailed(
            f"unknown type(s) {bad}; use one of {', '.join(parsing.ATTRIBUTE_PARSERS)}"
        )
    stored = {}
    if spec.kind == "customers":
        stored = dict(AttributeDefinition.objects.filter(name__in=extra).values_list("name", "type"))
    # A type is fixed once a column is first imported: asking for another one later is a
    # mistake to say, not a request to ignore.
    clash = {c: (stored[c], t) for c, t in overrides.items() if c in stored and stored[c] != t}
    if clash:
        raise ImportFailed("; ".join(
            f"column {c!r} is already typed {was}: --type {c}={asked} cannot change it" for c, (was, asked) in clash.items()
        ))
    types = {}
    for column in extra:
        if column in stored:
            types[column] = stored[column]
        elif column in overrides:
            types[column] = overrides[column]
        else:
            values = (r[1].get(column, "") for r in head if isinstance(r[1], dict))
            types[column] = parsing.infer_type(values, odd_allowed=True)
    new = [c for c in extra if c not in stored]
    if spec.kind == "customers" and new:
        AttributeDefinition.objects.bulk_create(
            [AttributeDefinition(name=c, type=types[c]) for c in new], ignore_conflicts=True
        )
        # Another import may have defined one of them first: its type is the one that holds.
        types |= dict(AttributeDefinition.objects.filter(name__in=new).values_list("name", "type"))
    return types, new
