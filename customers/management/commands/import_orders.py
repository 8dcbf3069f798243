from ._import_base import ImportCommand


class Command(ImportCommand):
    help = "Import orders from CSV: upsert by external id; customers must exist already."
    kind = "orders"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--currency", help="currency for rows without one (default USD)")

    def handle(self, *args, **options):
        self.run_import(options, currency=options["currency"])
