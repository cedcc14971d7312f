"""Reads of a course's curriculum that the interfaces need beyond the services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core import sql
from core.sql import CHUNK
from curriculum.models import Course, Item, Prerequisite, Skill


def items_existing(*, course: Course, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` name items of ``course``."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(
            Item.objects.filter(course=course, external_id__in=wanted[start : start + CHUNK]).values_list(
                "external_id", flat=True
            )
        )
    return found


def skill_names(*, course: Course) -> dict[str, str]:
    """Skill id -> its display name."""
    return dict(Skill.objects.filter(course=course).values_list("external_id", "name"))


def prerequisites_authored(*, course: Course) -> list[tuple[str, str]]:
    """The course's declared prerequisites, (prerequisite skill id, skill id), in a stable order."""
    return list(
        Prerequisite.objects.filter(course=course, origin=Prerequisite.AUTHORED)
        .order_by("source__external_id", "target__external_id")
        .values_list("source__external_id", "target__external_id")
    )


# Plain SQL: the next-item path asks for it on every request (tutor/hot_queries.py says why).
def item_shown(*, course_pk: int, external_id: str) -> dict[str, Any] | None:
    """What a client may show of an item (never its answer)."""
    rows = sql.rows(
        f"SELECT body, choices, answer_format FROM {Item._meta.db_table} WHERE course_id = %s AND external_id = %s",
        [course_pk, external_id],
    )
    if not rows:
        return None
    body, choices, answer_format = rows[0]
    return {"body": body, "choices": sql.json_value(choices), "answer_format": answer_format}
