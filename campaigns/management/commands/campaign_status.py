import json

from django.core.management.base import BaseCommand, CommandError

from campaigns import selectors
from campaigns.models import Campaign


class Command(BaseCommand):
    help = "A campaign's state and its ledger's counts per status."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="name or id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            campaign = selectors.campaign_get(options["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        status = selectors.campaign_status(campaign)
        if options["json"]:
            self.stdout.write(json.dumps(status))
            return
        counts = ", ".join(f"{k} {v:,}" for k, v in status["counts"].items() if v)
        self.stdout.write(f"campaign {status['name']!r}: {status['state']}, {status['progress']:.0%} done; {counts or 'no rows'}")
