"""The rejects file of an import: every refused row with its line number and reason.

The values are the file's own, so they are written through `core.csvout`: the person who
opens the rejects in a spreadsheet must not run a formula someone put in the import.
"""

from __future__ import annotations

from pathlib import Path

from core.csvout import SafeWriter


class RejectWriter:
    """Writes rejected rows with line number and reason; the file only exists if needed."""

    def __init__(self, path: Path | None, columns: list[str]):
        self.path = path
        self.columns = columns
        self.count = 0
        self.samples: list[dict] = []  # the first few, for API answers and the UI
        self._fh = None
        self._writer = None

    def write(self, line: int, reason: str, record: dict | None) -> None:
        self.count += 1
        if len(self.samples) < 100:
            self.samples.append({"line": line, "reason": reason})
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="", encoding="utf-8")
            self._writer = SafeWriter(self._fh)
            self._writer.writerow(["line", "reason", *self.columns])
        values = [] if record is None else ["" if record.get(c) is None else record.get(c) for c in self.columns]
        self._writer.writerow([line, reason, *values])

    def close(self) -> None:
        if self._fh:
            self._fh.close()


