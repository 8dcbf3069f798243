"""Validating records: the importer's hot loop, from text records to staging tuples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from core import parsing
from core.parsing import ValueProblem
from core.rejects import RejectWriter

from .result import ImportResult
from .specs import Spec


def rows_parse(
    spec: Spec,
    sources: dict[str, str],
    extra_types: dict[str, str],
    records: Iterable[tuple[int, dict | str]],
    rejects: RejectWriter,
    result: ImportResult,
    id_prefix: str,
    defaults: dict,
) -> Iterator[tuple]:
    """Staging tuples for the valid records; every other record goes to rejects."""
    # The per-column decisions are made once here, not once per row: this loop is the
    # importer's hot path (a million rows means eight million values).
    plan = []
    for column in spec.columns:
        source = sources.get(column.name)
        generated = column.name == "external_id" and source is None
        default = defaults.get(column.name, column.default)
        plan.append((source, column.parse, column.required, default, generated))
    extra_plan = [(name, parsing.ATTRIBUTE_PARSERS[kind], kind) for name, kind in extra_types.items()]
    dumps = json.dumps
    for line, record in records:
        result.rows += 1
        if isinstance(record, str):
            rejects.write(line, f"line {line}: row {record}", None)
            continue
        values: list = [line]
        try:
            for source, parse, required, default, generated in plan:
                if generated:
                    values.append(f"{id_prefix}{line}")
                    continue
                text = record.get(source) if source else None
                if not text or text.isspace():
                    if required:
                        raise ValueProblem(f"column '{source}' is blank")
                    values.append(default)
                    continue
                try:
                    values.append(parse(text))
                except ValueProblem as exc:
                    raise ValueProblem(f"column '{source}': {exc}") from None
            extras = {}
            for name, parse, kind in extra_plan:
                text = record.get(name)
                if text and not text.isspace():
                    try:
                        extras[name] = parse(text)
                    except ValueProblem as exc:
                        raise ValueProblem(f"column '{name}' ({kind}): {exc}") from None
        except ValueProblem as exc:
            rejects.write(line, f"line {line}: {exc}", record)
            continue
        values.append(dumps(extras))
        yield tuple(values)
