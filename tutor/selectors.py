"""Reads of learners and their answers that the interfaces need beyond the services: filtered lists."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from curriculum.models import Course
from tutor.models import Interaction, Learner


def interactions_query(
    *,
    course: Course,
    learner: str | None = None,
    skill: str | None = None,
    item: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Interaction]:
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
    return (
        rows.select_related("learner", "item")
        .order_by("timestamp", "id")
        .only(
            "id",
            "client_id",
            "correct",
            "timestamp",
            "response_time",
            "created_at",
            "learner__external_id",
            "item__external_id",
        )
    )


def learners_query(*, course: Course) -> QuerySet[Learner]:
    """The course's learners by id."""
    return Learner.objects.filter(course=course).order_by("external_id")
