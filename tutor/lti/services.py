"""LTI 1.3 on the tool side: what a validated launch does here, and mastery sent back as a grade (AGS).

Grade passback: after interactions of a learner who came through an LTI launch are
recorded through the API (REST or xAPI), ``lti_grade_passback_enqueue`` queues
``lti_grade_passback_task`` after commit (run in-process when no broker is set).
Pages that record answers call the same function; ``manage.py lti_grade_passback``
sends every learner's grade of a course at once (e.g. after a new fit).
The score is the mean mastery over the course's skills (skills without an
estimate count as 0), sent as scoreGiven out of 100.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone as django_timezone
from lti_tool.models import Key, LtiLaunch, LtiUser
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector
from rest_framework.throttling import SimpleRateThrottle

from core.errors import ServiceError
from curriculum.models import Course, Skill
from tracing.models import Mastery
from tutor.enrolments import EnrolmentConflict, enrolment_set
from tutor.lti.classes import class_for_context, class_member_put, learner_launched, teaching_grant_put
from tutor.lti.models import ClassMember, CourseClass, LtiCourseLink, LtiGradeTarget, PracticeActivity, TeachingGrant
from tutor.lti.roles import LEARNER, TEACHING_ROLES, launch_role
from tutor.models import Enrolment, Learner
from tutor.services import learner_get_or_create

logger = logging.getLogger(__name__)

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
HTTP_TIMEOUT = 10.0
MASTERY_TAG = "kt-mastery"
ACTIVITY_TAG = "kt-goals"


class LaunchRefused(Exception):
    """A valid launch this tool cannot serve; ``message`` is shown to the person launching."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class LaunchResult:
    """``learner`` is None for a teaching launch (instructor, teaching assistant, administrator), which
    opens ``course_class`` on the dashboard instead of the learner page."""

    course: Course
    learner: Learner | None
    user: Any
    redirect_url: str
    role: str = LEARNER
    course_class: CourseClass | None = None
    activity: PracticeActivity | None = None


def lti_key_ensure() -> Key:
    """The tool's signing key, created on first use (rotate with ``manage.py rotate_keys``)."""
    key = Key.objects.active().order_by("-datetime_created").first()
    return key if key is not None else Key.objects.generate()


def lti_login_allow(*, address: str, now: float | None = None) -> int | None:
    """Count one LTI login request from ``address``; None if within TUTOR_LTI_LOGIN_RATE, else the seconds
    to wait. A fixed window per address, counted atomically in the cache (shared when CACHE_URL is)."""
    limit, period = SimpleRateThrottle.parse_rate(None, settings.TUTOR_LTI_LOGIN_RATE)  # the API's rate syntax
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"lti-login:{address}:{period}:{window}"
    cache.add(key, 0, timeout=period + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=period + 1)
        used = 1
    if used <= limit:
        return None
    return max(1, int((window + 1) * period - now + 0.999))


def course_link_for(*, deployment, context_id: str) -> LtiCourseLink | None:
    """The link for this context of the deployment, else the deployment-wide one (empty context id)."""
    links = {
        link.context_id: link
        for link in LtiCourseLink.objects.select_related("course").filter(
            deployment=deployment, context_id__in=[context_id, ""]
        )
    }
    return links.get(context_id) or links.get("")


def _username(registration_pk: int, sub: str) -> str:
    name = f"lti-{registration_pk}-{sub}"
    if len(name) <= 150:
        return name
    return f"lti-{registration_pk}-{hashlib.sha256(sub.encode()).hexdigest()}"


def _user_for(lti_user: LtiUser):
    if lti_user.auth_user_id is not None:
        return lti_user.auth_user
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=_username(lti_user.registration_id, lti_user.sub),
        defaults={
            "first_name": lti_user.given_name[:150],
            "last_name": lti_user.family_name[:150],
            "email": lti_user.email,
        },
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    lti_user.auth_user = user
    lti_user.save(update_fields=["auth_user"])
    return user


def _launch_link(launch: LtiLaunch) -> tuple[dict[str, Any], str, LtiCourseLink]:
    """The launch's context claim, its context id and the course link of its placement; LaunchRefused where
    none is."""
    context = launch.context_claim or {}
    context_id = str(context.get("id", ""))
    link = course_link_for(deployment=launch.deployment, context_id=context_id)
    if link is None:
        raise LaunchRefused(
            f"This LMS placement (deployment {launch.deployment.deployment_id!r}, context "
            f"{context_id or '-'!r}) is not linked to a course yet. Ask an administrator to add an "
            f"LTI course link for it."
        )
    return context, context_id, link


def lti_launch_complete(*, launch: LtiLaunch) -> LaunchResult:
    """After a validated resource launch: the course, a signed-in user and its learner, and the grade target."""
    context, context_id, link = _launch_link(launch)
    role = launch_role(launch.roles_claim)
    nrps = launch.nrps_claim or {}
    title = str(context.get("title") or context.get("label") or "")
    activity = _activity_of(launch, link)
    if role in TEACHING_ROLES:
        return _teaching_launch(
            launch=launch,
            link=link,
            context_id=context_id,
            title=title,
            role=role,
            memberships_url=str(nrps.get("context_memberships_url") or ""),
        )
    with transaction.atomic():
        user = _user_for(launch.user)
        learner = learner_get_or_create(
            course=link.course, external_id=f"{link.learner_prefix}{launch.user.sub}", user=user
        )
        if learner.user_id != user.pk:
            raise LaunchRefused(
                f"The learner id {learner.external_id!r} in course {link.course.slug!r} already "
                f"belongs to another account; an administrator can set a learner prefix on the "
                f"LTI course link.",
                status=409,
            )
        # The launch enrols the account in this course (and only this one) as this learner.
        try:
            enrolment_set(course=link.course, user=user, learner=learner, source=Enrolment.LTI)
        except EnrolmentConflict:
            raise LaunchRefused(
                f"The learner id {learner.external_id!r} in course {link.course.slug!r} is enrolled "
                f"for another account; an administrator can remove that enrolment.",
                status=409,
            ) from None
        ags = launch.ags_claim or {}
        scopes = list(ags.get("scope") or [])
        if SCORE_SCOPE in scopes and (ags.get("lineitem") or ags.get("lineitems")):
            resource_link = launch.resource_link_claim or {}
            LtiGradeTarget.objects.update_or_create(
                learner=learner,
                registration=launch.registration,
                lineitem_url=ags.get("lineitem") or "",
                lineitems_url=ags.get("lineitems") or "",
                defaults={
                    "user_sub": launch.user.sub,
                    "scopes": scopes,
                    "activity": activity,
                    "resource_link_id": str(resource_link.get("id", "")),
                },
            )
        if context_id:
            # The learner's context is their class: they are on its roster from their first launch.
            course_class = class_for_context(
                course=link.course,
                deployment=launch.deployment,
                context_id=context_id,
                title=title,
                memberships_url=str(nrps.get("context_memberships_url") or ""),
            )
            learner_launched(
                course_class=course_class, learner=learner, lms_user_id=launch.user.sub, name=_display_name(launch.user)
            )
    redirect_url = settings.TUTOR_LTI_LAUNCH_REDIRECT.format(course=link.course.slug)
    return LaunchResult(course=link.course, learner=learner, user=user, redirect_url=redirect_url, activity=activity)


ACTIVITY_PARAMETER = "tutor_activity"
"""The custom parameter a placed activity's resource link carries: the activity's id."""


def _activity_of(launch: LtiLaunch, link: LtiCourseLink) -> PracticeActivity | None:
    """The placed activity this resource link launches (its custom parameter), if any. One of another
    course or deployment (a copied link) is refused rather than practised in the wrong place."""
    wanted = launch.get_custom_claim(ACTIVITY_PARAMETER)
    if not wanted:
        return None
    activity = PracticeActivity.objects.filter(
        pk=int(wanted) if str(wanted).isdigit() else None, course=link.course, deployment=launch.deployment
    ).first()
    if activity is None:
        raise LaunchRefused("This activity is not available any more; ask your teacher to place it again.", status=404)
    return activity


def lti_deep_link_start(*, launch: LtiLaunch) -> LaunchResult:
    """A Deep Linking request: only a teacher of a linked context may place an activity; they get the
    class's grant as on a teaching launch, and then choose the activity's goals."""
    context, context_id, link = _launch_link(launch)
    role = launch_role(launch.roles_claim)
    if role not in TEACHING_ROLES:
        raise LaunchRefused("Only teachers can place a practice activity.")
    nrps = launch.nrps_claim or {}
    return _teaching_launch(
        launch=launch,
        link=link,
        context_id=context_id,
        role=role,
        title=str(context.get("title") or context.get("label") or ""),
        memberships_url=str(nrps.get("context_memberships_url") or ""),
    )


def activity_place(*, launch: LtiLaunch, user: Any, title: str, goals: list[str]) -> PracticeActivity:
    """Store the activity a teacher placed from this Deep Linking launch: its course (the context's
    link), title and goal skills (at least one, each a skill of the course)."""
    context_id = str((launch.context_claim or {}).get("id", ""))
    link = course_link_for(deployment=launch.deployment, context_id=context_id)
    if link is None:
        raise ServiceError("this placement is not linked to a course", field="course")
    known = set(Skill.objects.filter(course=link.course, external_id__in=goals).values_list("external_id", flat=True))
    if not goals or set(goals) - known:
        raise ServiceError("choose one or more skills of the course as the activity's goals", field="goals")
    title = (title or "").strip()[:200] or f"Practice: {link.course.name}"
    return PracticeActivity.objects.create(
        course=link.course,
        deployment=launch.deployment,
        context_id=context_id,
        title=title,
        goals=list(dict.fromkeys(goals)),
        created_by=user,
    )


def activity_resource(*, activity: PracticeActivity, launch_url: str) -> DeepLinkResource:
    """The content item sent back to the LMS: a resource link to the tool's launch URL carrying the
    activity's id, with a line item of its own (out of 100) that its grades go to."""
    column = (
        LineItem()
        .set_label(activity.title[:100])
        .set_score_maximum(100)
        .set_tag(ACTIVITY_TAG)
        .set_resource_id(f"activity-{activity.pk}")
    )
    return (
        DeepLinkResource()
        .set_url(launch_url)
        .set_title(activity.title)
        .set_custom_params({ACTIVITY_PARAMETER: str(activity.pk)})
        .set_lineitem(column)
    )


def _display_name(lti_user: LtiUser) -> str:
    return (lti_user.name or " ".join(part for part in (lti_user.given_name, lti_user.family_name) if part)).strip()


def _teaching_launch(
    *, launch: LtiLaunch, link: LtiCourseLink, context_id: str, title: str, role: str, memberships_url: str
) -> LaunchResult:
    """An instructor's, teaching assistant's or administrator's launch: a grant on the class of this
    context (made now if new), no learner, no site-staff rights; the roster is fetched from the LMS
    once this commits. A launch without a context has no class to open and is refused."""
    if not context_id:
        raise LaunchRefused(
            "This LMS placement sends no course context, so there is no class to show its "
            "teacher; launch the tool from inside an LMS course.",
            status=400,
        )
    with transaction.atomic():
        user = _user_for(launch.user)
        course_class = class_for_context(
            course=link.course,
            deployment=launch.deployment,
            context_id=context_id,
            title=title,
            memberships_url=memberships_url,
        )
        teaching_grant_put(course_class=course_class, user=user, role=role, at=django_timezone.now())
        class_member_put(
            course_class=course_class,
            external_id=f"{link.learner_prefix}{launch.user.sub}",
            lms_user_id=launch.user.sub,
            name=_display_name(launch.user),
            role=role,
        )
    redirect_url = settings.TUTOR_LTI_TEACHER_REDIRECT.format(course=link.course.slug, course_class=course_class.pk)
    return LaunchResult(
        course=link.course, learner=None, user=user, redirect_url=redirect_url, role=role, course_class=course_class
    )


def learner_grade(*, learner: Learner, skills: list[str] | None = None) -> float:
    """Mean mastery over the course's skills (over ``skills``, a placed activity's goals, when given), in
    [0, 1]; a skill without an estimate counts as 0."""
    course_skills = learner.course.skills.all()
    if skills is not None:
        course_skills = course_skills.filter(external_id__in=skills)
    total = course_skills.count()
    if total == 0:
        return 0.0
    known = (
        Mastery.objects.filter(learner=learner, skill__in=course_skills).aggregate(total=Sum("probability"))["total"]
        or 0.0
    )
    return min(max(float(known) / total, 0.0), 1.0)


class _TimeoutSession(requests.Session):
    # pylti1p3 makes its requests without a timeout; an LMS that hangs must not hang a worker.
    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(*args, **kwargs)


@dataclass(frozen=True)
class PassbackOutcome:
    target: int
    score: float
    ok: bool
    error: str = ""


def _send(target: LtiGradeTarget, score: float, session: requests.Session) -> None:
    connector = ServiceConnector(target.registration.to_registration(), requests_session=session)
    service = AssignmentsGradesService(
        connector, {"scope": target.scopes, "lineitem": target.lineitem_url, "lineitems": target.lineitems_url}
    )
    grade = (
        Grade()
        .set_score_given(round(score * 100, 4))
        .set_score_maximum(100)
        .set_timestamp(datetime.now(UTC).isoformat(timespec="milliseconds"))
        .set_activity_progress("InProgress")
        .set_grading_progress("FullyGraded")
        .set_user_id(target.user_sub)
    )
    if target.lineitem_url:
        service.put_grade(grade)
    elif target.activity is not None:  # a placed activity whose link came without its line item: find or make it
        column = (
            LineItem()
            .set_tag(ACTIVITY_TAG)
            .set_label(target.activity.title[:100])
            .set_score_maximum(100)
            .set_resource_id(f"activity-{target.activity_id}")
        )
        if target.resource_link_id:
            column.set_resource_link_id(target.resource_link_id)
        service.put_grade(grade, column)
    else:  # no line item of its own: find or create the course's mastery column
        column = (
            LineItem()
            .set_tag(MASTERY_TAG)
            .set_label("Mastery")
            .set_score_maximum(100)
            .set_resource_id(target.learner.course.slug)
        )
        if target.resource_link_id:
            column.set_resource_link_id(target.resource_link_id)
        service.put_grade(grade, column)


def lti_grade_passback(*, learner: Learner) -> list[PassbackOutcome]:
    """Post the learner's grade to every LMS gradebook it came from: the mean mastery over the course's
    skills, or over a placed activity's goal skills on that activity's own line item.

    Each target's outcome is stored on it (last score, time, error); a failure is
    logged and reported, never raised, so one unreachable LMS does not stop the others.
    """
    targets = list(
        LtiGradeTarget.objects.select_related("registration", "learner__course", "activity").filter(learner=learner)
    )
    if not targets:
        return []
    course_score = learner_grade(learner=learner)
    outcomes = []
    with _TimeoutSession() as session:
        for target in targets:
            score = (
                course_score
                if target.activity is None
                else learner_grade(learner=learner, skills=list(target.activity.goals))
            )
            try:
                _send(target, score, session)
            except Exception as error:  # the LMS's answer or the network: record it, try the others
                logger.warning(
                    "LTI grade passback to %s for learner %s failed: %s",
                    target.lineitem_url or target.lineitems_url,
                    learner,
                    error,
                )
                LtiGradeTarget.objects.filter(pk=target.pk).update(last_error=str(error)[:2000])
                outcomes.append(PassbackOutcome(target.pk, score, False, str(error)))
                continue
            LtiGradeTarget.objects.filter(pk=target.pk).update(
                last_score=score, last_sent_at=django_timezone.now(), last_error=""
            )
            outcomes.append(PassbackOutcome(target.pk, score, True))
    return outcomes


@dataclass(frozen=True)
class RosterOutcome:
    members: int
    learners: int
    removed: int
    revoked: int = 0


def lti_roster_sync(*, course_class: CourseClass, session: requests.Session | None = None) -> RosterOutcome:
    """Fetch the class's roster from the LMS (Names and Role Provisioning Services, every page) and store
    it: name, LMS user id, role and status of each member, no e-mail address. Members the LMS no longer
    lists are kept, marked deleted (their answers stay). The outcome, or the error, is stored on the class;
    an error is raised too (a task retries it)."""
    if course_class.source != CourseClass.LTI or not course_class.memberships_url:
        raise ValueError(f"class {course_class.pk} has no LMS roster service")
    deployment = course_class.deployment
    link = course_link_for(deployment=deployment, context_id=course_class.context_id)
    prefix = link.learner_prefix if link is not None else ""
    try:
        with session or _TimeoutSession() as http:
            connector = ServiceConnector(deployment.registration.to_registration(), requests_session=http)
            members = NamesRolesProvisioningService(
                connector, {"context_memberships_url": course_class.memberships_url}
            ).get_members()
    except Exception as error:  # the LMS's answer or the network
        CourseClass.objects.filter(pk=course_class.pk).update(roster_error=str(error)[:2000])
        raise
    seen, learners = set(), 0
    with transaction.atomic():
        for member in members:
            user_id = str(member.get("user_id") or "")
            if not user_id:
                continue
            role = launch_role(member.get("roles"))
            name = str(
                member.get("name")
                or " ".join(str(member.get(part) or "") for part in ("given_name", "family_name")).strip()
            )
            status = str(member.get("status") or "Active").lower()
            external_id = f"{prefix}{user_id}"
            class_member_put(
                course_class=course_class,
                external_id=external_id,
                lms_user_id=user_id,
                name=name,
                role=role,
                status=status if status in (ClassMember.ACTIVE, ClassMember.INACTIVE) else ClassMember.DELETED,
            )
            seen.add(external_id)
            learners += role == LEARNER
        removed = (
            ClassMember.objects.filter(course_class=course_class)
            .exclude(lms_user_id="")
            .exclude(external_id__in=seen)
            .update(status=ClassMember.DELETED)
        )
        revoked = _grants_revoke(course_class, members)
        CourseClass.objects.filter(pk=course_class.pk).update(roster_synced_at=django_timezone.now(), roster_error="")
    return RosterOutcome(members=len(seen), learners=learners, removed=removed, revoked=revoked)


def _grants_revoke(course_class: CourseClass, members: Sequence[Any]) -> int:
    """End the teaching grants of people the LMS now lists in this context as no longer teaching it
    (another role, or inactive). Someone the roster does not list keeps theirs: an institution
    administrator may launch from a course without being a member of it."""
    listed = {
        str(member.get("user_id")): (
            launch_role(member.get("roles")) in TEACHING_ROLES
            and str(member.get("status") or "Active").lower() == ClassMember.ACTIVE
        )
        for member in members
        if member.get("user_id")
    }
    revoked = 0
    registration = course_class.deployment.registration_id
    for grant in TeachingGrant.objects.filter(course_class=course_class):
        subs = LtiUser.objects.filter(auth_user=grant.user_id, registration=registration).values_list("sub", flat=True)
        if any(sub in listed for sub in subs) and not any(listed.get(sub) for sub in subs):
            grant.delete()
            revoked += 1
    return revoked
