import json

from django.core.management.base import BaseCommand, CommandError

from campaigns.automations import selectors as automation_selectors
from campaigns.models import Automation
from core import formatting


class Command(BaseCommand):
    help = "An automation's state, entries, sends per step, exits and its always-valid report."

    def add_arguments(self, parser):
        parser.add_argument("automation", help="name or id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            automation = automation_selectors.automation_get(options["automation"])
        except Automation.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        status = automation_selectors.automation_status(automation)
        if options["json"]:
            self.stdout.write(json.dumps(status, default=str))
            return
        sent = ", ".join(f"step {s['index'] + 1} {s['sent']:,} sent" for s in status["steps"])
        report = status["report"]
        effect = f"effect {formatting.points(report['diff'])} ({formatting.points_interval(report['diff_ci'])})" if report["diff"] is not None else "effect: too early"
        self.stdout.write(f"automation {status['name']!r}: {status['state']}, {status['entries']:,} entries "
                          f"({status['held_out']:,} held out); {sent}; {effect}")
