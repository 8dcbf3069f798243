import json

from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from customers.services.demo import demo_load


class Command(BaseCommand):
    help = "Load a synthetic customer base with planted clusters, churn drivers and a past A/B test."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there are customers already")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["customers"] < 1:
            raise CommandError("--customers must be at least 1")
        if options["if_empty"] and Customer.objects.exists():
            self.stdout.write("demo data: skipped, there are customers already")
            return
        result = demo_load(options["customers"], options["seed"])
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                f"demo data: {result['customers']:,} customers, {result['orders']:,} orders, "
                f"{result['events']:,} events (seed {result['seed']}, today {result['today']}) "
                f"in {result['seconds']}s"
            )
