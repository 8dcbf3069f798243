from ._import_base import ImportCommand


class Command(ImportCommand):
    help = "Import customers from CSV: upsert by external id; other columns become typed attributes."
    kind = "customers"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--id-from-row", action="store_true",
            help="the file has no id column: each row's id is its line number",
        )
        parser.add_argument("--id-prefix", default="", help="prefix for --id-from-row ids, e.g. hillstrom-")

    def handle(self, *args, **options):
        self.run_import(options, id_from_row=options["id_from_row"], id_prefix=options["id_prefix"])
