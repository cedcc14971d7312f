"""Thin Celery wrapper over the LTI grade passback, and the one place a passback is queued."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task
from django.db import transaction

from core.sql import keyed_rows
from tutor.lti.models import LtiGradeTarget
from tutor.lti.services import lti_grade_passback
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
        raise self.retry(countdown=60 * 2 ** self.request.retries)
    return {"sent": len(outcomes) - len(failed), "failed": len(failed)}


def lti_grade_passback_enqueue(*, learner_ids: Iterable[int]) -> int:
    """Queue a passback, after commit, for each of these learners that has a gradebook; returns how many."""
    wanted = sorted(set(learner_ids))
    if not wanted:
        return 0
    # Plain SQL: this runs after every recorded answer (tutor/hot_queries.py says why).
    with_targets = sorted(keyed_rows(f"SELECT DISTINCT learner_id, 1 FROM {LtiGradeTarget._meta.db_table} "
                                     "WHERE learner_id IN ({marks})", [], wanted))
    for learner_id in with_targets:
        def enqueue(learner_id: int = learner_id) -> None:
            try:
                lti_grade_passback_task.delay(learner_id)
            except Exception:  # the answers are stored; a lost grade update is retried by the next answer
                logger.exception("could not queue the LTI grade passback of learner %s", learner_id)

        transaction.on_commit(enqueue)
    return len(with_targets)
