"""What import_customers, import_orders and import_events share."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.commands import result_print
from core.parsing import ATTRIBUTE_PARSERS
from customers.importers.result import ImportFailed
from customers.importers.run import import_file


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        target, sep, source = value.partition("=")
        if not sep or not target or not source:
            raise CommandError(f"{option} {value!r}: expected NAME=VALUE")
        pairs[target.strip()] = source.strip()
    return pairs


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--map", action="append", default=[], metavar="FIELD=COLUMN",
            help="read FIELD from the file's COLUMN (repeatable), e.g. --map external_id=id",
        )
        parser.add_argument(
            "--type", action="append", default=[], metavar="COLUMN=TYPE",
            help=f"type of a new extra column instead of inferring it: {', '.join(ATTRIBUTE_PARSERS)}",
        )
        parser.add_argument("--rejects", type=Path, help="where to write rejected rows (default: var/rejects/)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def run_import(self, options, **kwargs):
        try:
            result = import_file(
                self.kind,
                options["file"],
                mapping=_pairs(options["map"], "--map"),
                types=_pairs(options["type"], "--type"),
                rejects_path=options["rejects"],
                progress=sys.stderr.isatty() and not options["json"],
                **kwargs,
            )
        except ImportFailed as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        result_print(self.stdout, result, as_json=options["json"])
        return result

    def handle(self, *args, **options):
        self.run_import(options)
