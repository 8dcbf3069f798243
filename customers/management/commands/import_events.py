from ._import_base import ImportCommand


class Command(ImportCommand):
    help = "Import activity events from CSV (customer, kind, occurred_at); other columns become properties."
    kind = "events"
