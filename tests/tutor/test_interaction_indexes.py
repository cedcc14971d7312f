"""The interaction table's indexes (tutor 0010): every query by course, learner or item starts one."""

import re

import pytest
from django.db import connection, transaction

pytestmark = pytest.mark.django_db


SHAPES = {
    "a learner's answers (history, erasure, replay)": (
        "learner_id",
        "SELECT * FROM tutor_interaction WHERE learner_id = 1",
    ),
    "a learner's delete cascading": ("learner_id", "DELETE FROM tutor_interaction WHERE learner_id IN (1, 2)"),
    "a learner's foreign-key check": (
        "learner_id",
        "SELECT 1 FROM ONLY tutor_interaction x WHERE learner_id = 1 FOR KEY SHARE OF x",
    ),
    "a course's answers (dashboard, export, fit)": (
        "course_id",
        "SELECT count(*) FROM tutor_interaction WHERE course_id = 1",
    ),
    "a course's answers after an id": (
        "course_id",
        "SELECT 1 FROM tutor_interaction WHERE course_id = 1 AND id > 0 LIMIT 1",
    ),
    "a course's delete cascading": ("course_id", "DELETE FROM tutor_interaction WHERE course_id IN (1)"),
    "a course's foreign-key check": (
        "course_id",
        "SELECT 1 FROM ONLY tutor_interaction x WHERE course_id = 1 FOR KEY SHARE OF x",
    ),
    "an item's foreign-key check": (
        "item_id",
        "SELECT 1 FROM ONLY tutor_interaction x WHERE item_id = 1 FOR KEY SHARE OF x",
    ),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_query_by_course_learner_or_item_starts_an_index(postgresql, shape):
    """The answers' own indexes on course and learner went (tutor 0010: each insert updated them, and the
    composite indexes that begin with those columns serve the same queries). With sequential scans priced
    out, each query shape that relied on them must still be answered by an index that begins with its
    column (not a whole-index scan with a filter), whatever the table's size."""
    column, query = SHAPES[shape]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query)
        plan = "\n".join(line for (line,) in cursor.fetchall())
        used = re.findall(r"(?:using|Index Scan on) (\w+)", plan)
        cursor.execute(
            "SELECT a.attname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
            "JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE c.relname = ANY(%s)",
            [used],
        )
        leading = {name for (name,) in cursor.fetchall()}
    assert column in leading, plan
