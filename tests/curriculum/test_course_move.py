"""Course moved from tutor to curriculum (migrations curriculum 0003 ... tutor 0006) without touching its
table: a database at the earlier state keeps every course and everything that points at it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("tutor", "0005_learner_goal"),
    ("curriculum", "0002_initial"),
    ("tracing", "0002_fit_time_limit"),
    ("tutor_lti", "0001_initial"),
]
AFTER = [
    ("tutor", "0006_course_moved"),
    ("curriculum", "0003_course"),
    ("tracing", "0003_course_moved"),
    ("tutor_lti", "0002_course_moved"),
]


def _migrate(targets):
    """Migrate the four apps to ``targets``, every other app to its latest; the models at that state."""
    executor = MigrationExecutor(connection)
    pinned = {app for app, _ in targets}
    full = [node for node in executor.loader.graph.leaf_nodes() if node[0] not in pinned] + list(targets)
    executor.migrate(full)
    return MigrationExecutor(connection).loader.project_state(full).apps


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_courses_and_their_rows_survive_the_move():
    old = _migrate(BEFORE)
    course = old.get_model("tutor", "Course").objects.create(slug="kept", name="Kept", open_to_all=True)
    learner = old.get_model("tutor", "Learner").objects.create(course=course, external_id="ada")
    old.get_model("curriculum", "Skill").objects.create(course=course, external_id="add")
    old.get_model("tracing", "Fit").objects.create(course=course, kind="rate")
    content_type = old.get_model("contenttypes", "ContentType")
    content_type.objects.get_or_create(app_label="tutor", model="course")

    new = _migrate([])  # every app to its latest, the move included
    moved = new.get_model("curriculum", "Course").objects.get(slug="kept")
    assert (moved.pk, moved.name, moved.open_to_all) == (course.pk, "Kept", True)
    assert new.get_model("tutor", "Learner").objects.get(pk=learner.pk).course_id == moved.pk
    assert moved.skills.count() == 1 and moved.fits.count() == 1 and moved.learners.count() == 1
    labels = set(
        new.get_model("contenttypes", "ContentType").objects.filter(model="course").values_list("app_label", flat=True)
    )
    assert labels == {"curriculum"}
    with connection.cursor() as cursor:
        assert "tutor_course" in connection.introspection.table_names(cursor)
