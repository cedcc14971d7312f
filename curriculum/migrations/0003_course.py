"""Course moves here from tutor (issue 20: the curriculum is the bottom floor). The table keeps its name
(tutor_course) and its rows: only Django's picture of the models changes, and the course's content type
follows it, so admin history and permissions stay attached."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_move(apps, schema_editor, source="tutor", target="curriculum"):
    content_type = apps.get_model("contenttypes", "ContentType")
    if content_type.objects.filter(app_label=target, model="course").exists():
        return
    content_type.objects.filter(app_label=source, model="course").update(app_label=target)


def content_type_back(apps, schema_editor):
    content_type_move(apps, schema_editor, source="curriculum", target="tutor")


def _course_field(related_name):
    return models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name=related_name,
                             to="curriculum.course")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("curriculum", "0002_initial"),
        ("tutor", "0005_learner_goal"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Course",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("slug", models.SlugField(max_length=64, unique=True)),
                        ("name", models.CharField(max_length=200)),
                        ("description", models.TextField(blank=True)),
                        ("has_clock", models.BooleanField(
                            default=True,
                            help_text="False when timestamps are synthetic step numbers (e.g. DKVMN files).")),
                        ("policy", models.JSONField(
                            blank=True, default=dict,
                            help_text="Next-item policy settings (threshold, band, goals, review).")),
                        ("open_to_all", models.BooleanField(
                            default=False,
                            help_text="Any signed-in user may practise it (the demo course is); otherwise only "
                                      "the users enrolled in it (by an LTI launch, staff or the API).")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "tutor_course", "ordering": ["slug"]},
                ),
                migrations.AlterField(model_name="skill", name="course", field=_course_field("skills")),
                migrations.AlterField(model_name="item", name="course", field=_course_field("items")),
                migrations.AlterField(model_name="prerequisite", name="course", field=_course_field("prerequisites")),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_move, content_type_back),
    ]
