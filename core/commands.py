"""What management commands share: how they print their answer.

Every command prints a one-line summary, or with `--json` the machine-readable result
(DESIGN.md "Management commands"); a result offers both as `summary()` and `as_dict()`.
"""

from __future__ import annotations

import json
from typing import Protocol, TextIO


class CommandResult(Protocol):
    def summary(self) -> str: ...

    def as_dict(self) -> dict: ...


def result_print(out: TextIO, result: CommandResult, *, as_json: bool) -> None:
    out.write(json.dumps(result.as_dict(), default=str) if as_json else result.summary())
