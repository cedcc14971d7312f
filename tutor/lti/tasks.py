"""Thin Celery wrapper over the LTI grade passback."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=5, soft_time_limit=120, time_limit=150)
def lti_grade_passback_task(self, learner_id: int) -> dict:
    from tutor.lti.services import lti_grade_passback
    from tutor.models import Learner

    learner = Learner.objects.select_related("course").filter(pk=learner_id).first()
    if learner is None:
        return {"sent": 0, "failed": 0}
    outcomes = lti_grade_passback(learner=learner)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed and not self.request.is_eager:
        # An LMS that is down now may be up later: back off 1, 2, 4... minutes.
        raise self.retry(countdown=60 * 2 ** self.request.retries)
    return {"sent": len(outcomes) - len(failed), "failed": len(failed)}
