"""Tasks really cross the broker to a separate worker process (CI starts one; see .ci/run)."""

import os
import time

import pytest

from tracing.models import Fit

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_task_crosses_the_broker_to_another_process(live_worker):
    from tracing.tasks import ping_task

    result = ping_task.delay(41).get(timeout=30)
    assert result["value"] == 41
    assert result["pid"] != os.getpid()


def test_a_fit_of_the_demo_course_runs_on_the_worker(live_worker):
    from curriculum.services import course_from_document, curriculum_import
    from tutor.actions import fit_start
    from tutor.demo import demo_document, demo_history_simulate

    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    assert demo_history_simulate(course=course, document=document, learners=30, answers=30) > 0

    fit = fit_start(course=course, kind="bkt")  # queued on the fits queue, which a plain worker takes
    assert fit.task_id, "the task was sent to the broker, not run in-process"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        fit.refresh_from_db()
        if fit.status in (Fit.SUCCEEDED, Fit.FAILED):
            break
        time.sleep(0.5)
    assert fit.status == Fit.SUCCEEDED, fit.error
    assert fit.active and fit.metrics["next_step"]["auc"] > 0.5
    assert course.learners.first().mastery.count() == course.skills.count()
