import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.automations import selectors as automation_selectors
from campaigns.errors import CampaignError
from campaigns.services.automations.create import automation_create


class Command(BaseCommand):
    help = "Create an active automation (a triggered offer) from a JSON spec."

    def add_arguments(self, parser):
        parser.add_argument("--spec", required=True,
                            help='a JSON file: {name, trigger: {"segment"|"event"|"date": ...}, holdout, steps: [...]}')
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            spec = json.loads(Path(options["spec"]).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {options['spec']}: {exc}") from None
        try:
            automation = automation_create(spec)
        except CampaignError as exc:
            raise CommandError(str(exc)) from None
        status = automation_selectors.automation_status(automation)
        if options["json"]:
            self.stdout.write(json.dumps(status, default=str))
            return
        steps = len(status["steps"])
        self.stdout.write(f"automation {automation.name!r}: {automation.state}, triggered by {automation.trigger}, "
                          f"{steps} step{'s' if steps != 1 else ''}, {status['entries']:,} entries so far")
