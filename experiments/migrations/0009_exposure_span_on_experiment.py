from django.db import migrations, models

# The span of the exposures already written, while the index on (experiment, exposed_at)
# still makes each MIN and MAX one lookup; then the two indexes a launch no longer writes.
SPAN_FILL = """
UPDATE experiments_experiment SET
    first_exposed_at = (SELECT MIN(e.exposed_at) FROM experiments_exposure e WHERE e.experiment_id = experiments_experiment.id),
    last_exposed_at = (SELECT MAX(e.exposed_at) FROM experiments_exposure e WHERE e.experiment_id = experiments_experiment.id)
"""


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0008_exposure_index_customer_experiment'),
    ]

    operations = [
        migrations.AddField(
            model_name='experiment',
            name='first_exposed_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='experiment',
            name='last_exposed_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(SPAN_FILL, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='exposure',
            name='exposure_experiment_arm',
        ),
        migrations.RemoveIndex(
            model_name='exposure',
            name='exposure_experiment_time',
        ),
    ]
