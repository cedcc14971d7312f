"""Read-side queries the API needs beyond the services: filtered lists and lookups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from curriculum.models import Item, Skill, Course
from tracing.models import Mastery
from core.sql import CHUNK
from tutor.hot_queries import item_shown
from tutor.models import Interaction, Learner


def interactions_query(*, course: Course, learner: str | None = None, skill: str | None = None,
                       item: str | None = None, since: datetime | None = None,
                       until: datetime | None = None) -> QuerySet[Interaction]:
    """The course's interactions, oldest first; ``since`` inclusive, ``until`` exclusive."""
    rows = Interaction.objects.filter(course=course)
    if learner is not None:
        rows = rows.filter(learner__external_id=learner)
    if item is not None:
        rows = rows.filter(item__external_id=item)
    if skill is not None:
        rows = rows.filter(item__skills__course=course, item__skills__external_id=skill)
    if since is not None:
        rows = rows.filter(timestamp__gte=since)
    if until is not None:
        rows = rows.filter(timestamp__lt=until)
    return (rows.select_related("learner", "item").order_by("timestamp", "id")
            .only("id", "client_id", "correct", "timestamp", "response_time", "created_at",
                  "learner__external_id", "item__external_id"))


def learners_query(*, course: Course) -> QuerySet[Learner]:
    return Learner.objects.filter(course=course).order_by("external_id")


def stored_mastery(*, course: Course, learners: Iterable[str]) -> dict[str, dict[str, float]]:
    """learner external id -> skill external id -> stored P(known), for the named learners of ``course``."""
    names = sorted(set(learners))
    result: dict[str, dict[str, float]] = {}
    for start in range(0, len(names), CHUNK):
        rows = (Mastery.objects.filter(learner__course=course, learner__external_id__in=names[start:start + CHUNK])
                .values_list("learner__external_id", "skill__external_id", "probability"))
        for learner, skill, probability in rows:
            result.setdefault(learner, {})[skill] = round(float(probability), 6)
    return result


def items_existing(*, course: Course, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(Item.objects.filter(course=course, external_id__in=wanted[start:start + CHUNK])
                     .values_list("external_id", flat=True))
    return found


def skill_names(*, course: Course) -> dict[str, str]:
    return dict(Skill.objects.filter(course=course).values_list("external_id", "name"))


def item_public(*, course: Course, item: str) -> dict | None:
    """What a client may show of an item (never its answer)."""
    return item_shown(course_pk=course.pk, external_id=item)
