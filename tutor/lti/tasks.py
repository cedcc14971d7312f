"""Thin Celery wrapper over the LTI grade passback, and the one place a passback is queued."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task
from django.db import transaction

from core.sql import keyed_rows
from tutor.lti.models import CourseClass, LtiGradeTarget
from tutor.lti.services import lti_grade_passback, lti_roster_sync
from tutor.models import Learner

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=5, soft_time_limit=120, time_limit=150)
def lti_grade_passback_task(self, learner_id: int) -> dict:
    learner = Learner.objects.select_related("course").filter(pk=learner_id).first()
    if learner is None:
        return {"sent": 0, "failed": 0}
    outcomes = lti_grade_passback(learner=learner)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed and not self.request.is_eager:
        # An LMS that is down now may be up later: back off 1, 2, 4... minutes.
        raise self.retry(countdown=60 * 2**self.request.retries)
    return {"sent": len(outcomes) - len(failed), "failed": len(failed)}


def lti_grade_passback_enqueue(*, learner_ids: Iterable[int]) -> int:
    """Queue a passback, after commit, for each of these learners that has a gradebook; returns how many."""
    wanted = sorted(set(learner_ids))
    if not wanted:
        return 0
    # Plain SQL: this runs after every recorded answer (tutor/hot_queries.py says why).
    with_targets = sorted(
        keyed_rows(
            f"SELECT DISTINCT learner_id, 1 FROM {LtiGradeTarget._meta.db_table} WHERE learner_id IN ({{marks}})",
            [],
            wanted,
        )
    )
    for learner_id in with_targets:

        def enqueue(learner_id: int = learner_id) -> None:
            try:
                lti_grade_passback_task.delay(learner_id)
            except Exception:  # the answers are stored; a lost grade update is retried by the next answer
                logger.exception("could not queue the LTI grade passback of learner %s", learner_id)

        transaction.on_commit(enqueue)
    return len(with_targets)


@shared_task(bind=True, acks_late=True, max_retries=3, soft_time_limit=300, time_limit=330)
def lti_roster_sync_task(self, course_class_id: int) -> dict:
    course_class = CourseClass.objects.select_related("deployment__registration").filter(pk=course_class_id).first()
    if course_class is None or not course_class.memberships_url:
        return {"members": 0}
    try:
        outcome = lti_roster_sync(course_class=course_class)
    except Exception:  # recorded on the class by the service; an LMS that is down now may be up later
        logger.warning("LTI roster sync of class %s failed", course_class_id, exc_info=True)
        if self.request.is_eager:
            return {"members": 0, "failed": True}
        raise self.retry(countdown=60 * 2**self.request.retries) from None
    return {"members": outcome.members, "learners": outcome.learners, "removed": outcome.removed}


def lti_roster_sync_enqueue(*, course_class_id: int) -> None:
    """Queue a roster fetch of the class once the current transaction commits (a teacher's launch)."""

    def enqueue() -> None:
        try:
            lti_roster_sync_task.delay(course_class_id)
        except Exception:  # the launch stands; the class page's refresh fetches it again
            logger.exception("could not queue the LTI roster sync of class %s", course_class_id)

    transaction.on_commit(enqueue)
