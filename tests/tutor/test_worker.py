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


def _finished(fit: Fit, seconds: float = 180) -> Fit:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fit.refresh_from_db()
        if fit.status in (Fit.SUCCEEDED, Fit.FAILED):
            break
        time.sleep(0.5)
    return fit


def test_a_sharded_fit_runs_as_a_chord_on_the_worker_and_equals_the_whole_fit(live_worker):
    """Three shard tasks and the merge cross the broker; one worker process (CI's --concurrency=1) runs
    them in turn, as no task waits on another; the merged fit is the fit of one task."""
    from curriculum.services import course_from_document, curriculum_import
    from tracing.models import Mastery
    from tutor.actions import fit_start
    from tutor.demo import demo_document, demo_history_simulate

    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    assert demo_history_simulate(course=course, document=document, learners=30, answers=30) > 0
    params = {"restarts": 2, "max_iter": 30, "multigs": True}

    def mastery(fit: Fit) -> dict:
        return {(m.learner_id, m.skill_id): m.probability for m in Mastery.objects.filter(fit=fit)}

    whole = _finished(fit_start(course=course, kind="bkt", params=params))
    assert whole.status == Fit.SUCCEEDED, whole.error
    whole_mastery = mastery(whole)
    sharded = fit_start(course=course, kind="bkt", params={**params, "shards": 3})
    assert sharded.task_id, "the chord was sent to the broker, not run in-process"
    sharded = _finished(sharded)
    assert sharded.status == Fit.SUCCEEDED, sharded.error
    assert sharded.active and not Fit.objects.get(pk=whole.pk).active
    shards = sharded.timings["shards"]
    assert [part["shard"] for part in shards] == [0, 1, 2]
    assert all(part["pid"] != os.getpid() for part in shards)
    assert sharded.fitted_params["skills"] == whole.fitted_params["skills"]
    assert sharded.metrics == whole.metrics
    assert whole_mastery and mastery(sharded) == whole_mastery


def _until(check, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    return check()


def test_psikt_traits_and_absorbs_run_on_the_worker(live_worker, settings, tmp_path):
    """The trait refresh after an answer and the periodic absorb cross the broker (the maintenance queue)."""
    from curriculum.services import course_from_document, curriculum_import
    from tracing.models import LearnerTraits
    from tracing.tasks import fits_absorb_task
    from tutor.actions import answers_record, fit_start
    from tutor.demo import demo_document, demo_history_simulate

    settings.TRACING_TRAITS_DELAY = 0.2
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    demo_history_simulate(course=course, document=document, learners=10, answers=12)
    params = {"steps": 4, "batch_size": 16, "max_length": 40, "absorb_steps": 2, "threads": 1}
    fit = fit_start(course=course, kind="psikt", params=params)
    assert _until(lambda: Fit.objects.get(pk=fit.pk).status in (Fit.SUCCEEDED, Fit.FAILED))
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error

    item = course.items.order_by("id").values_list("external_id", flat=True).first()
    rows = [{"learner": "worker-new", "item": item, "correct": True, "timestamp": "2026-11-20T10:00:00Z"}]
    answers_record(course=course, rows=rows)
    traits = _until(lambda: LearnerTraits.objects.filter(fit=fit, learner__external_id="worker-new").first(), 60)
    assert traits is not None and traits.answers == 1

    fits_absorb_task.delay().get(timeout=60)
    absorb = _until(lambda: Fit.objects.filter(parent=fit, status=Fit.SUCCEEDED).first())
    assert absorb is not None and absorb.active and absorb.metrics["absorbed"]["new_learners"] == 1
