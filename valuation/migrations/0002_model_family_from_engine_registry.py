"""Model families come from the engine's registry (a deployment may register more), so the
column keeps no list of choices, and room for a longer plug-in name."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('valuation', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='trainingrun',
            name='model_family',
            field=models.CharField(max_length=64),
        ),
    ]
