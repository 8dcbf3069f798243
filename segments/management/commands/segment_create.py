import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from segments.services import membership, specs


class Command(BaseCommand):
    help = "Create a segment from a JSON file with the REST API's payload, and refresh it."

    def add_arguments(self, parser):
        parser.add_argument("--spec", required=True, help="JSON file: {\"name\": ..., \"kind\": \"rule\", \"rule\": {...}}")
        parser.add_argument("--no-refresh", action="store_true", help="create only; refresh later")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        path = Path(options["spec"])
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        refresh = not options["no_refresh"] and (not isinstance(spec, dict) or spec.pop("refresh", True))
        try:
            with transaction.atomic():
                segment = membership.segment_create(spec)
        except specs.SpecInvalid as exc:
            if options["json"]:
                self.stdout.write(json.dumps({"errors": exc.errors}))
            raise CommandError("invalid segment: " + "; ".join(f"{e['path']}: {e['message']}" for e in exc.errors)) from None
        refreshes = membership.segment_refresh(segment) if refresh else []
        segment.refresh_from_db()
        if options["json"]:
            self.stdout.write(json.dumps({"segment": segment.pk, "name": segment.name, "kind": segment.kind,
                                          "size": segment.size, "version": segment.current_version,
                                          "refreshed": len(refreshes)}))
        else:
            size = f"{segment.size:,} customers" if refreshes else "not refreshed yet"
            self.stdout.write(f"created segment {segment.pk} {segment.name!r} ({segment.kind}): {size}")
