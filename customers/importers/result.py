"""What an import answers, and the error that refuses one as a whole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


class ImportFailed(Exception):
    """The import as a whole was refused; nothing was written."""


@dataclass
class ImportResult:
    kind: str
    source: str
    rows: int = 0
    imported: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    encoding: str = ""
    delimiter: str = ""
    attributes: dict = field(default_factory=dict)  # every extra column -> its type
    new_attributes: dict = field(default_factory=dict)  # the columns this import typed -> type
    columns_ignored: dict = field(default_factory=dict)  # column -> why it was not imported
    seconds: float = 0.0
    reject_samples: list = field(default_factory=list)  # the first 100: line and reason

    def summary(self) -> str:
        line = (
            f"{self.kind} from {self.source}: {self.rows:,} rows read, {self.imported:,} imported "
            f"({self.created:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged), "
            f"{self.rejected:,} rejected"
        )
        if self.rejects_path:
            line += f" (reasons in {self.rejects_path})"
        line += f" in {self.seconds:.1f}s"
        if self.new_attributes:
            line += "; new columns typed " + ", ".join(f"{c} ({t})" for c, t in self.new_attributes.items())
        for column, reason in self.columns_ignored.items():
            line += f"; column {column[:40]!r} not imported: {reason}"
        return line

    def as_dict(self) -> dict:
        return asdict(self)
