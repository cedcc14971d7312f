"""Who may practise which course, and as which learner.

A user practises a course when enrolled in it (an LTI launch from a placement linked to it, a staff
member, or an integration through the API) or when the course is open to every signed-in user. The
learner a user practises as is tied to the account only by an explicit act: the enrolment names it,
an LTI launch names it by the LMS's user id, or staff or the API name it. A user's name never picks a
learner: a local account "alice" does not become the learner "alice" imported from a file.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet

from core.errors import NotFound, ServiceError
from curriculum.models import Course
from tutor.models import Enrolment, Learner
from tutor.services import learner_get_or_create

WEB_LEARNER_PREFIX = "user:"
"""A learner made for an account that opens a course has the id ``user:<account pk>`` (or, if a file or
an LMS already used that id, the same with a random suffix): never the username."""


class EnrolmentConflict(ServiceError):
    status = 409


def courses_for_user(*, user: Any) -> QuerySet[Course]:
    """The courses ``user`` may practise: those open to all and those they are enrolled in."""
    return Course.objects.filter(Q(open_to_all=True) | Q(enrolments__user=user)).distinct()


def course_for_user(*, user: Any, slug: str) -> Course:
    """The course, if ``user`` may practise it; NotFound otherwise, whether or not it exists, so that a
    page does not tell an outsider which courses there are."""
    course = courses_for_user(user=user).filter(slug=slug).first()
    if course is None:
        raise NotFound(f"course {slug!r} not found", field="course")
    return course


def _learner_new(*, course: Course, user: Any) -> Learner:
    external_id = f"{WEB_LEARNER_PREFIX}{user.pk}"
    while True:
        learner, created = Learner.objects.get_or_create(
            course=course, external_id=external_id, defaults={"user": user}
        )
        if created or learner.user_id == user.pk:
            return learner
        # Taken by a learner of a file or an LMS: that one stays theirs.
        external_id = f"{WEB_LEARNER_PREFIX}{user.pk}-{secrets.token_hex(4)}"


def enrolment_learner(*, course: Course, user: Any) -> Learner:
    """The learner ``user`` practises ``course`` as, made on the first visit.

    The enrolment's learner, else a learner already tied to the account in this course (an LTI launch
    made before, staff), else a new one (``user:<pk>``). An open course enrols the user on the first
    visit. NotFound when the user may not practise the course. Two first visits at once (two tabs)
    make one enrolment and one learner: the enrolment row is locked while its learner is chosen.
    """
    with transaction.atomic():
        if course.open_to_all:
            enrolment, _ = Enrolment.objects.get_or_create(
                course=course, user=user, defaults={"source": Enrolment.OPEN}
            )
        enrolment = Enrolment.objects.select_for_update().filter(course=course, user=user).first()
        if enrolment is None:
            raise NotFound(f"course {course.slug!r} not found", field="course")
        if enrolment.learner_id is not None:
            learner = Learner.objects.get(pk=enrolment.learner_id)
            learner.course = course
            return learner
        learner = Learner.objects.filter(course=course, user=user, enrolment__isnull=True).order_by(
            "id"
        ).first() or _learner_new(course=course, user=user)
        enrolment.learner = learner
        enrolment.save(update_fields=["learner"])
        return learner


def enrolment_set(
    *, course: Course, user: Any, learner: Learner | None = None, source: str = Enrolment.STAFF
) -> tuple[Enrolment, bool]:
    """Enrol ``user`` in ``course``, as ``learner`` when given (an explicit tie: staff, the API, an LTI
    launch); returns (enrolment, created). A learner tied to another account is refused (409): untie it
    first. An existing enrolment keeps its source and takes the new learner."""
    if learner is not None and learner.course_id != course.pk:
        raise ServiceError(f"learner {learner.external_id!r} is not in course {course.slug!r}", field="learner")
    with transaction.atomic():
        if learner is not None:
            learner = Learner.objects.select_for_update().get(pk=learner.pk)
            other = Enrolment.objects.filter(learner=learner).exclude(user=user).exists()
            if other or learner.user_id not in (None, user.pk):
                raise EnrolmentConflict(
                    f"learner {learner.external_id!r} is tied to another account; remove that enrolment first",
                    code="learner_taken",
                    field="learner",
                )
        enrolment, created = Enrolment.objects.get_or_create(
            course=course, user=user, defaults={"source": source, "learner": learner}
        )
        if learner is not None:
            if not created and enrolment.learner_id != learner.pk:
                enrolment = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
                enrolment.learner = learner
                enrolment.save(update_fields=["learner"])
            if learner.user_id is None:
                learner.user = user
                learner.save(update_fields=["user"])
    return enrolment, created


def enrolment_put(*, course: Course, external_id: str, username: str) -> tuple[Enrolment, bool]:
    """The API's enrolment: the account ``username`` practises ``course`` as the learner ``external_id``
    (created if new). All or nothing: an unknown account or a learner tied to another one changes nothing."""
    user = user_by_username(username=username)
    with transaction.atomic():
        learner = learner_get_or_create(course=course, external_id=external_id)
        return enrolment_set(course=course, user=user, learner=learner, source=Enrolment.API)


def enrolment_delete(*, enrolment: Enrolment) -> None:
    """End an enrolment and untie its learner from the account (the learner and its answers stay)."""
    with transaction.atomic():
        if enrolment.learner_id is not None:
            Learner.objects.filter(pk=enrolment.learner_id, user=enrolment.user_id).update(user=None)
        enrolment.delete()


def enrolment_get(*, course: Course, learner: Learner) -> Enrolment:
    enrolment = Enrolment.objects.select_related("user").filter(course=course, learner=learner).first()
    if enrolment is None:
        raise NotFound(f"learner {learner.external_id!r} is not enrolled for any account", field="learner")
    return enrolment


def user_by_username(*, username: str) -> Any:
    """The account called ``username``; a ServiceError naming the field when there is none."""
    users = get_user_model()
    try:
        return users.objects.get(**{users.USERNAME_FIELD: username})
    except users.DoesNotExist:
        raise ServiceError(f"no account named {username!r}", code="unknown_user", field="user") from None
