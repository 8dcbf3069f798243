import json

from django.core.management.base import BaseCommand, CommandError

from core.lookups import by_name_or_id
from segments.services import membership
from segments.models import Segment


class Command(BaseCommand):
    help = "Refresh a segment (and its family) now, or every segment with --all."

    def add_arguments(self, parser):
        parser.add_argument("segment", nargs="?", help="segment name, or id (a name made of digits wins)")
        parser.add_argument("--all", action="store_true", help="every segment, dependencies first")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if bool(options["segment"]) == bool(options["all"]):
            raise CommandError("give a segment NAME_OR_ID or --all")
        if options["all"]:
            refreshes = membership.segment_refresh_all()
        else:
            try:
                segment = by_name_or_id(Segment.objects.all(), options["segment"], "segment")
            except Segment.DoesNotExist as exc:
                raise CommandError(str(exc)) from None
            refreshes = membership.segment_refresh(segment)
        names = dict(Segment.objects.filter(pk__in=[r.segment_id for r in refreshes]).values_list("id", "name"))
        rows = [{"segment": r.segment_id, "name": names.get(r.segment_id), "version": r.version, "size": r.size,
                 "entered": r.entered, "left": r.left, "seconds": r.seconds} for r in refreshes]
        if options["json"]:
            self.stdout.write(json.dumps({"refreshed": rows}))
            return
        detail = ", ".join(f"{r['name']}: {r['size']:,} (+{r['entered']:,} -{r['left']:,})" for r in rows[:10])
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        self.stdout.write(f"refreshed {len(rows)} segment(s): {detail}{more}")
