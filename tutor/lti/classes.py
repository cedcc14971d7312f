"""Classes of a course (LMS contexts and staff groups), their rosters, and who may see which learners.

Site staff see every course and every learner. Anyone else sees a course's dashboard only through a
teaching grant on one of its classes (an instructor's LTI launch makes it), and only the learners on
those classes' rosters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Collate, Lower

from curriculum.models import Course
from tutor.lti.models import ClassMember, CourseClass, TeachingGrant
from tutor.models import Learner


def class_for_context(
    *, course: Course, deployment: Any, context_id: str, title: str = "", memberships_url: str = ""
) -> CourseClass:
    """The class of this LMS context in ``course``, made on the first launch from it; a later launch
    refreshes its name and its roster service URL."""
    name = (title or context_id or "LMS class")[:200]
    course_class, created = CourseClass.objects.get_or_create(
        course=course,
        deployment=deployment,
        context_id=context_id,
        source=CourseClass.LTI,
        defaults={"name": name, "memberships_url": memberships_url},
    )
    changed = {
        field: value
        for field, value in (("name", name if title else None), ("memberships_url", memberships_url or None))
        if value is not None and getattr(course_class, field) != value
    }
    if not created and changed:
        for field, value in changed.items():
            setattr(course_class, field, value)
        course_class.save(update_fields=list(changed))
    return course_class


def class_member_put(
    *,
    course_class: CourseClass,
    external_id: str,
    lms_user_id: str = "",
    name: str = "",
    role: str = ClassMember.LEARNER,
    status: str = ClassMember.ACTIVE,
    learner: Learner | None = None,
) -> ClassMember:
    """Add or refresh one roster entry; its learner is the course's learner with this id, where there is one."""
    if learner is None:
        learner = Learner.objects.filter(course=course_class.course_id, external_id=external_id).first()
    defaults: dict[str, Any] = {"role": role, "status": status, "learner": learner}
    if lms_user_id:
        defaults["lms_user_id"] = lms_user_id
    if name:
        defaults["name"] = name[:200]
    member, _ = ClassMember.objects.update_or_create(
        course_class=course_class, external_id=external_id, defaults=defaults
    )
    return member


def teaching_grant_put(*, course_class: CourseClass, user: Any, role: str, at: Any = None) -> TeachingGrant:
    grant, _ = TeachingGrant.objects.update_or_create(
        course_class=course_class, user=user, defaults={"role": role, "last_launch_at": at}
    )
    return grant


@dataclass(frozen=True)
class TeachingScope:
    """What ``user`` may see of ``course`` on the dashboard: every learner (``everything``: site staff)
    or those of ``classes`` only."""

    course: Course
    classes: list[CourseClass]
    everything: bool

    def class_get(self, class_id: Any) -> CourseClass | None:
        """One of the visible classes by its id (a string from a query), else None."""
        return next((each for each in self.classes if str(each.pk) == str(class_id)), None) if class_id else None

    def learners(self, course_class: CourseClass | None = None) -> QuerySet[Learner]:
        """The learners this scope shows: of ``course_class`` if given (one of ``classes``), else all it may see."""
        learners = Learner.objects.filter(course=self.course)
        if course_class is not None:
            return learners.filter(class_memberships__course_class=course_class).distinct()
        if self.everything:
            return learners
        return learners.filter(class_memberships__course_class__in=self.classes).distinct()


def teaching_courses(*, user: Any) -> QuerySet[Course]:
    """The courses whose dashboard ``user`` may open."""
    if user.is_staff:
        return Course.objects.all()
    return Course.objects.filter(classes__grants__user=user).distinct()


def teaching_scope(*, user: Any, course: Course) -> TeachingScope | None:
    """What ``user`` may see of ``course``'s dashboard; None when nothing (not staff, no grant)."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return TeachingScope(course, list(CourseClass.objects.filter(course=course)), True)
    classes = list(CourseClass.objects.filter(course=course, grants__user=user).distinct())
    return TeachingScope(course, classes, False) if classes else None


ROSTER_PAGE = 25
"""Learners on one page of a roster (the whole course, for site staff, is every learner: 200,000 at scale)."""

RosterKey = tuple[str, str]
"""Where a row sorts: its name (or, without one, its learner id) lowercased, then its learner id."""


def roster_key(row: dict[str, Any]) -> RosterKey:
    return row.get("key") or ((row["name"] or row["external_id"]).lower(), row["external_id"])


def class_roster(
    *,
    scope: TeachingScope,
    course_class: CourseClass | None = None,
    after: RosterKey | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Everyone the scope shows as a learner: the rosters' learner entries (those who have not started
    too) and, for site staff without a class chosen, every learner of the course. One row per learner
    id: ``name``, ``external_id``, ``learner`` (None: not started), ``status``, ``classes``; in
    ``roster_key`` order, those after ``after`` only, ``limit`` at most (a keyset page: the course's
    learners beyond the rosters are read a page at a time, in SQL, in the same order)."""
    classes = [course_class] if course_class is not None else scope.classes
    rows: dict[str, dict[str, Any]] = {}
    for member in (
        ClassMember.objects.filter(course_class__in=classes, role=ClassMember.LEARNER)
        .select_related("learner", "course_class")
        .order_by("name", "external_id")
    ):
        row = rows.setdefault(
            member.external_id,
            {
                "external_id": member.external_id,
                "name": member.name,
                "learner": member.learner,
                "status": member.status,
                "classes": [],
            },
        )
        row["classes"].append(member.course_class.name)
        row["name"] = row["name"] or member.name
        row["learner"] = row["learner"] or member.learner
        if member.status == ClassMember.ACTIVE:
            row["status"] = ClassMember.ACTIVE
    if scope.everything and course_class is None:
        for learner in _learners_page(scope.course, exclude=list(rows), after=after, limit=limit):
            rows[learner.external_id] = {
                "external_id": learner.external_id,
                "name": "",
                "learner": learner,
                "status": "",
                "classes": [],
                "key": (learner.key, learner.external_id),
            }
    ordered = sorted(rows.values(), key=roster_key)
    if after is not None:
        ordered = [row for row in ordered if roster_key(row) > after]
    return ordered[:limit] if limit is not None else ordered


def _learners_page(course: Course, *, exclude: list[str], after: RosterKey | None, limit: int | None) -> Any:
    """The course's learners not in ``exclude``, by lowercased id then id in code-point order (as Python
    compares the keys), after ``after``; each with its ``key`` (the lowercased id, as the database made it)."""
    key: Any = Lower("external_id")
    if connection.vendor == "postgresql":
        key = Collate(key, "C")
    learners = Learner.objects.filter(course=course).exclude(external_id__in=exclude).annotate(key=key)
    if after is not None:
        learners = learners.filter(Q(key__gt=after[0]) | Q(key=after[0], external_id__gt=after[1]))
    learners = learners.order_by(
        "key", Collate("external_id", "C") if connection.vendor == "postgresql" else "external_id"
    )
    return learners[:limit] if limit is not None else learners


def learner_launched(*, course_class: CourseClass, learner: Learner, lms_user_id: str, name: str) -> ClassMember:
    """A learner's launch from the class's context puts them on its roster (before any roster sync)."""
    with transaction.atomic():
        return class_member_put(
            course_class=course_class,
            external_id=learner.external_id,
            lms_user_id=lms_user_id,
            name=name,
            learner=learner,
        )
