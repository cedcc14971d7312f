"""Issue 18 item 6: a fit's mastery recompute holds one batch of learners at a time, so the course being
fitted keeps answering while it runs (it held every learner of the course to the end before: minutes on
a course of millions of answers), and what learners answered meanwhile ends replayed under the new fit."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.threads import postgresql  # noqa: F401 - fixture
from tests.tutor.api_support import course_with_curriculum
from tracing import services
from tracing.estimators.base import LearnerState
from tracing.models import Fit, LearnerTrace, Mastery
from tracing.services import _replay, course_model, fit_run
from tutor.actions import answers_record
from tutor.models import Interaction, Learner

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ITEMS = ["q1", "q2", "q3", "q17"]


def _course(slug: str):
    course = course_with_curriculum(slug)
    generator = random.Random(2)
    answers_record(
        course=course,
        rows=[
            {
                "learner": f"sim-{number:02d}",
                "item": generator.choice(ITEMS),
                "correct": int(generator.random() < 0.6),
                "timestamp": (START - timedelta(days=2, minutes=number * 40 - step)).isoformat(),
            }
            for number in range(12)
            for step in range(10)
        ],
    )
    return course


def _answer(course, learner: str, number: int) -> None:
    answers_record(
        course=course,
        rows=[{"id": f"during-{learner}-{number}", "learner": learner, "item": ITEMS[number % 4], "correct": 1}],
    )


def _assert_replayed(course, external_id: str) -> None:
    learner = Learner.objects.get(course=course, external_id=external_id)
    model = course_model(course)
    replayed = _replay(model, learner)
    trace = LearnerState.from_json(LearnerTrace.objects.get(learner=learner).state)
    assert LearnerTrace.objects.get(learner=learner).fit_id == model.fit.pk, external_id
    np.testing.assert_allclose(trace.mastery, replayed.mastery, atol=1e-9, err_msg=f"trace of {external_id}")
    rows = Mastery.objects.filter(learner=learner)
    assert {row.fit_id for row in rows} == {model.fit.pk}, external_id
    stored = {row.skill.external_id: row.probability for row in rows}
    expected = dict(zip(model.estimator.skill_ids, replayed.mastery.tolist()))
    np.testing.assert_allclose(
        [stored[s] for s in expected], list(expected.values()), atol=1e-9, err_msg=f"mastery of {external_id}"
    )


@pytest.fixture
def first_fit(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path
    settings.TRACING_RECOMPUTE_BATCH, settings.TRACING_RECOMPUTE_PAUSE = 4, 0.0

    def make(slug: str):
        course = _course(slug)
        fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={}).pk)
        assert fit.status == Fit.SUCCEEDED, fit.error
        return course

    return make


@pytest.mark.django_db
def test_answers_during_the_recompute_end_replayed_under_the_new_fit(first_fit, monkeypatch):
    """After the first batch is written: an answer of a learner in it, one of a learner not yet written,
    and a new learner's first answer. All three end as a replay under the new fit, trace and mastery."""
    course = first_fit("during")
    progress, answered = services._recompute_progress, []

    def hook(fit, done, total, callback, pacer):
        progress(fit, done, total, callback, pacer)
        if not answered:
            answered.append(done)
            for learner in ("sim-00", "sim-11", "newcomer"):
                _answer(course, learner, len(answered))

    monkeypatch.setattr(services, "_recompute_progress", hook)
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={"forgets": True}).pk)
    assert fit.status == Fit.SUCCEEDED, fit.error
    assert answered == [4]
    assert course_model(course).fit.pk == fit.pk
    for learner in Learner.objects.filter(course=course).values_list("external_id", flat=True):
        _assert_replayed(course, learner)
    assert Interaction.objects.filter(course=course).count() == 12 * 10 + 3


@pytest.mark.django_db
def test_a_recompute_that_fails_puts_the_mastery_back_under_the_active_fit(first_fit, monkeypatch):
    course = first_fit("fails")
    before = sorted(Mastery.objects.filter(learner__course=course).values_list("learner_id", "skill_id", "fit_id"))
    progress = services._recompute_progress

    def hook(fit, done, total, callback, pacer):
        progress(fit, done, total, callback, pacer)
        if done >= 8:
            raise RuntimeError("the worker lost its database")

    monkeypatch.setattr(services, "_recompute_progress", hook)
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={"forgets": True}).pk)
    assert fit.status == Fit.FAILED
    assert not LearnerTrace.objects.filter(fit=fit).exists()
    after = sorted(Mastery.objects.filter(learner__course=course).values_list("learner_id", "skill_id", "fit_id"))
    assert after == before
    for learner in Learner.objects.filter(course=course).values_list("external_id", flat=True):
        _assert_replayed(course, learner)


@pytest.mark.django_db(transaction=True)
def test_the_course_being_fitted_keeps_answering_during_its_recompute(postgresql, first_fit, monkeypatch):  # noqa: F811
    """On another connection, while the fit's recompute is between batches, a learner of the same course
    answers (and one whose batch is still to come). Before, the activation held every learner of the course
    till its end, and these answers waited for the whole recompute."""
    course = first_fit("busy")
    progress, waits, threads = services._recompute_progress, [], []

    def hook(fit, done, total, callback, pacer):
        progress(fit, done, total, callback, pacer)
        if waits:
            return
        finished = threading.Event()

        def answer() -> None:
            from django.db import connection

            try:
                _answer(course, "sim-00", 1)
                _answer(course, "sim-11", 1)
                finished.set()
            finally:
                connection.close()

        thread = threading.Thread(target=answer)
        thread.start()
        threads.append(thread)
        waits.append(finished.wait(timeout=10))  # joined after the fit: before, it waited for the fit's commit

    monkeypatch.setattr(services, "_recompute_progress", hook)
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={"forgets": True}).pk)
    for thread in threads:
        thread.join(timeout=60)
    assert fit.status == Fit.SUCCEEDED, fit.error
    assert waits == [True], "an answer of the course waited for the recompute"
    for learner in ("sim-00", "sim-11", "sim-05"):
        _assert_replayed(course, learner)
