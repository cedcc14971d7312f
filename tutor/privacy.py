"""A learner's data on request: everything held about them as one document (an access request), and
their erasure, with an audit record that does not name them (README, Security: Privacy).

The flow crosses apps (learners, tracing, the LMS links, the accounts and their sign-in records), so it
has one home here, on the actions floor; every entry point (API, dashboard, ``manage.py learner_erase``)
calls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import models, transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone as django_timezone
from django.utils.crypto import salted_hmac
from lti_tool.models import LtiUser

from core.errors import NotFound, ServiceError
from curriculum.models import Course
from tracing.models import Fit, LearnerTrace, LearnerTraits, Mastery
from tracing.services import fits_learner_forget
from tutor.activity import activity_of_learner, activity_subtract
from tutor.hot_queries import learners_lock
from tutor.lti.models import ClassMember, LtiGradeTarget
from tutor.models import ApiKey, Enrolment, Erasure, Interaction, Learner

ACCOUNT_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "date_joined", "last_login")


def learner_digest(*, course_slug: str, external_id: str) -> str:
    """The keyed hash an Erasure stores instead of the learner's id: whoever knows the id (and runs this
    server, whose secret keys it) can check that it was erased; the table alone does not tell whom."""
    return salted_hmac("tutor.privacy.learner_digest", f"{course_slug}\n{external_id}", algorithm="sha256").hexdigest()


def _actor(by: Any) -> tuple[Any, str]:
    """(the staff user or None, a label) for whoever asked."""
    if isinstance(by, ApiKey):
        return None, f"API key {by.prefix}… ({by.name})"[:200]
    if by is not None and getattr(by, "is_authenticated", False):
        return by, f"user {by.get_username()}"[:200]
    return None, str(by or "management command")[:200]


def _learner_locked(course: Course, external_id: str) -> Learner:
    learner = Learner.objects.filter(course=course, external_id=external_id).first()
    if learner is None:
        raise NotFound(f"learner {external_id!r} not found in course {course.slug!r}", field="learner")
    # An answer being recorded for this learner holds this lock until it commits (tutor.services), so it
    # lands before the erasure (and is erased with the rest) or waits and finds the learner gone.
    learners_lock(learner_pks=[learner.pk])
    learner = Learner.objects.filter(pk=learner.pk).select_related("user").first()
    if learner is None:  # erased by a concurrent request while this one waited
        raise NotFound(f"learner {external_id!r} not found in course {course.slug!r}", field="learner")
    return learner


def _accounts(learner: Learner) -> list[Any]:
    """The accounts that practise as this learner: its own, and the one its enrolment names."""
    ids = {learner.user_id} | set(Enrolment.objects.filter(learner=learner).values_list("user_id", flat=True))
    return list(get_user_model().objects.filter(pk__in=ids - {None}).order_by("pk"))


def _account_is_theirs_alone(user: Any, course: Course, learner: Learner) -> bool:
    """An account goes with the learner only if nothing else holds it: no other course's enrolment or
    learner, and no staff rights (an administrator's account is never deleted through a course)."""
    if user.is_staff or user.is_superuser:
        return False
    if Enrolment.objects.filter(user=user).exclude(course=course).exists():
        return False
    return not Learner.objects.filter(user=user).exclude(pk=learner.pk).exists()


def _delete(counts: Counter, queryset: models.QuerySet) -> None:
    _, per_model = queryset.delete()
    counts.update({label: number for label, number in per_model.items() if number})


def _admin_log_forget(counts: Counter, objects: Iterable[tuple[type[models.Model], Iterable[Any]]]) -> None:
    """The admin's history names an object by its text (a learner's is ``course/external id``)."""
    condition = Q(pk__in=[])
    for model, pks in objects:
        pks = [str(pk) for pk in pks]
        if pks:
            condition |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=pks)
    _delete(counts, LogEntry.objects.filter(condition))


def _sessions_end(counts: Counter, user_pks: set[int]) -> None:
    """Sessions carry the account's number only inside their encoded data, so each is read."""
    wanted = {str(pk) for pk in user_pks}
    ended = [
        session.pk
        for session in Session.objects.iterator()
        if str(session.get_decoded().get("_auth_user_id")) in wanted
    ]
    _delete(counts, Session.objects.filter(pk__in=ended))


def _fits_mark(course: Course, first_answer: int | None) -> int:
    """Mark the fits that were trained on the erased answers: the active one (if its data reached them)
    and those running now. A later fit's activation serves a model without them."""
    if first_answer is None:
        return 0
    marked = 0
    now = django_timezone.now()
    for fit in Fit.objects.filter(Q(active=True) | Q(status=Fit.RUNNING), course=course):
        last = (fit.snapshot or {}).get("last_interaction_id")
        if fit.active and isinstance(last, int) and last < first_answer:
            continue  # trained before this learner's first answer
        marked += Fit.objects.filter(pk=fit.pk).update(erased_learners=F("erased_learners") + 1, erased_at=now)
    return marked


def learner_erase(
    *, course: Course, external_id: str, by: Any = None, via: str = Erasure.COMMAND, confirm: str | None = None
) -> Erasure:
    """Erase the course's learner ``external_id``: their answers, mastery, traces, traits, LMS grade targets and
    enrolment, their account where it belongs to no other course (with its LTI identities, sessions and
    sign-in records), and the admin's history of these rows; mark the fits trained on their answers,
    and rewrite the saved models that name them (tracing.services.fits_learner_forget);
    and leave an Erasure saying who did it, when and how many rows went from each table.

    All or nothing, in one transaction that holds the learner's lock. ``confirm`` must repeat the
    learner's id (the entry points ask for it, so an erasure is never one slip away); ``by`` is the
    staff user, the API key or a label for whoever asked.
    """
    if confirm != external_id:
        raise ServiceError(
            "to erase a learner, confirm with their id (the confirm field must equal the learner)",
            code="confirmation_required",
            field="confirm",
        )
    eraser, label = _actor(by)
    counts: Counter = Counter()
    with transaction.atomic():
        learner = _learner_locked(course, external_id)
        accounts = _accounts(learner)
        leaving = [user for user in accounts if _account_is_theirs_alone(user, course, learner)]
        first_answer = Interaction.objects.filter(learner=learner).aggregate(first=Min("id"))["first"]
        enrolments = list(
            Enrolment.objects.filter(Q(learner=learner) | Q(course=course, user__in=accounts)).values_list(
                "pk", flat=True
            )
        )
        targets = list(LtiGradeTarget.objects.filter(learner=learner).values_list("pk", "registration_id", "user_sub"))
        unclaimed = Q(pk__in=[])  # LTI identities of the grade targets that no account holds
        for registration, sub in {(registration, sub) for _, registration, sub in targets}:
            unclaimed |= Q(registration_id=registration, sub=sub, auth_user__isnull=True)
        lti_users = LtiUser.objects.filter(Q(auth_user__in=leaving) | unclaimed)
        lti_user_pks = list(lti_users.values_list("pk", flat=True))
        answered = activity_of_learner(learner_pk=learner.pk)
        _delete(counts, Interaction.objects.filter(learner=learner))
        _delete(counts, Mastery.objects.filter(learner=learner))
        _delete(counts, LearnerTrace.objects.filter(learner=learner))
        _delete(counts, LearnerTraits.objects.filter(learner=learner))
        _delete(counts, LtiGradeTarget.objects.filter(learner=learner))
        _delete(counts, Enrolment.objects.filter(pk__in=enrolments))
        # Class rosters hold the learner's name and LMS id, linked or (not started yet) by id only.
        _delete(counts, _memberships(course, learner))
        _admin_log_forget(
            counts,
            [
                (Learner, [learner.pk]),
                (Enrolment, enrolments),
                (LtiGradeTarget, [pk for pk, _, _ in targets]),
                (LtiUser, lti_user_pks),
                (get_user_model(), [user.pk for user in leaving]),
            ],
        )
        _delete(counts, Learner.objects.filter(pk=learner.pk))
        _delete(counts, LtiUser.objects.filter(pk__in=lti_user_pks))
        if leaving:
            usernames = [user.get_username() for user in leaving]
            for log in (AccessAttempt, AccessFailureLog, AccessLog):
                _delete(counts, log.objects.filter(username__in=usernames))
            _sessions_end(counts, {user.pk for user in leaving})
            _delete(counts, get_user_model().objects.filter(pk__in=[user.pk for user in leaving]))
        fits = _fits_mark(course, first_answer)
        if fits:
            counts["tracing.Fit (marked)"] = fits
        # Late in the transaction: the course's item and day sums are shared rows, held until the commit.
        activity_subtract(course_pk=course.pk, tally=answered)
        digest = learner_digest(course_slug=course.slug, external_id=external_id)
        # Models with per-learner parameters name their learners in the saved artifact.
        rewritten = fits_learner_forget(course=course, learner=external_id, replacement=f"erased:{digest[:16]}")
        if rewritten:
            counts["tracing.Fit (artifact rewritten)"] = rewritten
        return Erasure.objects.create(
            course=course,
            course_slug=course.slug,
            learner_number=learner.pk,
            learner_digest=digest,
            erased_by=eraser,
            actor=label,
            via=via,
            account_deleted=bool(leaving),
            counts=dict(sorted(counts.items())),
        )


def learner_erase_preview(*, course: Course, external_id: str) -> dict[str, Any]:
    """What erasing the learner would delete (the dashboard's confirmation page shows it): row counts, and
    which accounts would go and which stay (with the reason)."""
    learner = Learner.objects.filter(course=course, external_id=external_id).first()
    if learner is None:
        raise NotFound(f"learner {external_id!r} not found in course {course.slug!r}", field="learner")
    accounts = [
        {"username": user.get_username(), "deleted": _account_is_theirs_alone(user, course, learner)}
        for user in _accounts(learner)
    ]
    return {
        "learner": learner.external_id,
        "interactions": Interaction.objects.filter(learner=learner).count(),
        "mastery": Mastery.objects.filter(learner=learner).count(),
        "traces": LearnerTrace.objects.filter(learner=learner).count(),
        "traits": LearnerTraits.objects.filter(learner=learner).count(),
        "grade_targets": LtiGradeTarget.objects.filter(learner=learner).count(),
        "accounts": accounts,
    }


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def learner_export(*, course: Course, external_id: str) -> dict[str, Any]:
    """Everything held about the course's learner ``external_id``, as one JSON-ready document (an access
    request): the learner, their answers, mastery, model traces and traits, their account and its enrolments,
    their LMS identities and grade targets."""
    learner = Learner.objects.filter(course=course, external_id=external_id).select_related("user").first()
    if learner is None:
        raise NotFound(f"learner {external_id!r} not found in course {course.slug!r}", field="learner")
    accounts = _accounts(learner)
    interactions = [
        {
            "id": pk,
            "item": item,
            "correct": correct,
            "timestamp": _when(timestamp),
            "response_time": response_time,
            "client_id": client_id,
            "response": response,
            "stored_at": _when(created_at),
        }
        for pk, item, correct, timestamp, response_time, client_id, response, created_at in Interaction.objects.filter(
            learner=learner
        )
        .order_by("timestamp", "id")
        .values_list(
            "pk", "item__external_id", "correct", "timestamp", "response_time", "client_id", "response", "created_at"
        )
    ]
    mastery = [
        {"skill": skill, "probability": probability, "updated_at": _when(updated_at), "fit": fit}
        for skill, probability, updated_at, fit in Mastery.objects.filter(learner=learner)
        .order_by("skill__external_id")
        .values_list("skill__external_id", "probability", "updated_at", "fit_id")
    ]
    traces = [
        {"fit": fit, "model": kind, "state": state, "updated_at": _when(updated_at)}
        for fit, kind, state, updated_at in LearnerTrace.objects.filter(learner=learner)
        .order_by("fit_id")
        .values_list("fit_id", "fit__kind", "state", "updated_at")
    ]
    traits = [
        {"fit": fit, "model": kind, "loc": loc, "scale": scale, "answers": answers, "updated_at": _when(updated_at)}
        for fit, kind, loc, scale, answers, updated_at in LearnerTraits.objects.filter(learner=learner)
        .order_by("fit_id")
        .values_list("fit_id", "fit__kind", "loc", "scale", "answers", "updated_at")
    ]
    enrolments = [
        {"course": slug, "learner": learner_id, "source": source, "created_at": _when(created_at)}
        for slug, learner_id, source, created_at in Enrolment.objects.filter(Q(learner=learner) | Q(user__in=accounts))
        .order_by("course__slug")
        .values_list("course__slug", "learner__external_id", "source", "created_at")
    ]
    grade_targets = [
        {
            "platform": name,
            "user_sub": sub,
            "lineitem_url": lineitem,
            "lineitems_url": lineitems,
            "resource_link_id": link,
            "last_score": score,
            "last_sent_at": _when(sent),
        }
        for name, sub, lineitem, lineitems, link, score, sent in LtiGradeTarget.objects.filter(learner=learner)
        .order_by("pk")
        .values_list(
            "registration__name",
            "user_sub",
            "lineitem_url",
            "lineitems_url",
            "resource_link_id",
            "last_score",
            "last_sent_at",
        )
    ]
    lti_users = [
        {
            "platform": name,
            "sub": sub,
            "name": full,
            "given_name": given,
            "family_name": family,
            "email": email,
            "picture_url": picture,
            "first_seen": _when(created),
        }
        for name, sub, full, given, family, email, picture, created in LtiUser.objects.filter(auth_user__in=accounts)
        .order_by("pk")
        .values_list(
            "registration__name", "sub", "name", "given_name", "family_name", "email", "picture_url", "datetime_created"
        )
    ]
    return {
        "course": course.slug,
        "learner": learner.external_id,
        "created_at": _when(learner.created_at),
        "goal": learner.goal,
        "accounts": [
            {
                name: (_when(getattr(user, name)) if name in ("date_joined", "last_login") else getattr(user, name))
                for name in ACCOUNT_FIELDS
            }
            for user in accounts
        ],
        "enrolments": enrolments,
        "interactions": interactions,
        "mastery": mastery,
        "traces": traces,
        "traits": traits,
        "lti": {
            "users": lti_users,
            "grade_targets": grade_targets,
            "classes": [
                {"class": name, "name": member_name, "lms_user_id": lms_id, "role": role, "status": status}
                for name, member_name, lms_id, role, status in _memberships(course, learner)
                .order_by("pk")
                .values_list("course_class__name", "name", "lms_user_id", "role", "status")
            ],
        },
        "exported_at": django_timezone.now().isoformat(),
    }


def _memberships(course: Course, learner: Learner) -> QuerySet[ClassMember]:
    """The learner's places on the course's class rosters: linked to them, or listed by their id."""
    return ClassMember.objects.filter(
        Q(learner=learner) | Q(course_class__course=course, external_id=learner.external_id)
    )
