"""Interaction's own indexes on course_id and learner_id go (issue 18): each is a prefix of a composite index
(course: interaction_course_time, interaction_course_bulk and the client-id constraint; learner:
interaction_learner_history) that serves the same queries and the foreign-key checks of deletes, and each
made every inserted answer update one more index.

Only the indexes are dropped: Django's AlterField would also drop and re-add both foreign keys, which
re-checks every stored answer under an exclusive lock."""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = (
    ("tutor_interaction_course_id_54f02fbe", "course_id"),
    ("tutor_interaction_learner_id_e1dbe639", "learner_id"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("curriculum", "0003_course"),
        ("tutor", "0009_learner_mastery_pending"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "tutor_interaction" ("{column}")',
                )
                for name, column in INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="interaction",
                    name="course",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="interactions",
                        to="curriculum.course",
                    ),
                ),
                migrations.AlterField(
                    model_name="interaction",
                    name="learner",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="interactions",
                        to="tutor.learner",
                    ),
                ),
            ],
        ),
    ]
