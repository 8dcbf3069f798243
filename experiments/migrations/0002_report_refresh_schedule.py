"""Formerly wrote the stale-report refresh to beat's tables.

Periodic jobs are now declared in one place, core/schedules.py, and written after every
migrate; this migration stays (as a no-op) so databases that applied it keep their history.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
