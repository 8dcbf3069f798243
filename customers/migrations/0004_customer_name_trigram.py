"""A trigram index for the customer search box (name contains ...) on PostgreSQL.

Django's icontains is UPPER("name"::text) LIKE UPPER('%...%'): without this index that is
a scan of every customer. SQLite has no trigram index; there the search stays a scan.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    'CREATE INDEX IF NOT EXISTS customer_name_trgm ON customers_customer USING gin (UPPER("name"::text) gin_trgm_ops)',
]
DROP = ["DROP INDEX IF EXISTS customer_name_trgm"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_import_job_draft")]
    operations = [migrations.RunPython(forwards, backwards)]
