import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns import selectors
from campaigns.errors import CampaignError
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from campaigns.models import Campaign


class Command(BaseCommand):
    help = "Create a campaign from a JSON spec (the REST API's payload) and launch it, or launch an existing one."

    def add_arguments(self, parser):
        parser.add_argument("campaign", nargs="?", help="name or id of an existing draft campaign")
        parser.add_argument("--spec", help="a JSON file: {name, segment, variants: [...], holdout, send_at, ...}")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if bool(options["spec"]) == bool(options["campaign"]):
            raise CommandError("give either --spec FILE.json or the name of an existing campaign")
        try:
            with transaction.atomic():
                if options["spec"]:
                    try:
                        spec = json.loads(Path(options["spec"]).read_text())
                    except (OSError, ValueError) as exc:
                        raise CommandError(f"cannot read {options['spec']}: {exc}") from None
                    campaign = campaign_create(spec)
                else:
                    campaign = selectors.campaign_get(options["campaign"])
                result = campaign_launch(campaign)
        except (CampaignError, Campaign.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        status = selectors.campaign_status(result.campaign)
        if options["json"]:
            self.stdout.write(json.dumps(status | {"added": result.added}))
        else:
            self.stdout.write(
                f"campaign {status['name']!r} (id {status['id']}): {status['state']}, {result.added:,} recipients "
                f"in the ledger ({status['counts']['pending']:,} to send, {status['counts']['held_out']:,} held out)"
            )
