"""Fit.course points at curriculum.Course (the same table; curriculum 0003 says why)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("curriculum", "0003_course"),
        ("tracing", "0002_fit_time_limit"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="fit", name="course",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="fits",
                                            to="curriculum.course")),
            ],
            database_operations=[],
        ),
    ]
