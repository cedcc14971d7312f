"""Course now lives in curriculum (curriculum 0003): this app's foreign keys point there, and tutor forgets
the model. No table changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("curriculum", "0003_course"),
        ("tracing", "0003_course_moved"),
        ("tutor", "0005_learner_goal"),
        ("tutor_lti", "0002_course_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="learner", name="course",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="learners",
                                            to="curriculum.course")),
                migrations.AlterField(
                    model_name="enrolment", name="course",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="enrolments",
                                            to="curriculum.course")),
                migrations.AlterField(
                    model_name="interaction", name="course",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="interactions", to="curriculum.course")),
                migrations.AlterField(
                    model_name="apikey", name="course",
                    field=models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="api_keys",
                        help_text="The one course this key reaches; empty for a global admin key.",
                        to="curriculum.course")),
                migrations.DeleteModel(name="Course"),
            ],
            database_operations=[],
        ),
    ]
