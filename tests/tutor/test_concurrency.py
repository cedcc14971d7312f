"""Answers for one learner arriving at once (two tabs, an LMS retrying, a batch split over connections)
leave the same mastery and trace as a replay of that learner's stored answers: the online update is
serialised per learner. Threads need their own connections, so these run on PostgreSQL only."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.threads import THREADS, together
from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tracing.estimators.base import LearnerState
from tracing.models import Fit, LearnerTrace, Mastery
from tracing.services import _replay, course_model, fit_run
from tutor.actions import answers_record
from tutor.models import Interaction, Learner

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ITEMS = ["q1", "q2", "q3", "q17"]


@pytest.fixture
def fitted_course(postgresql, settings, tmp_path):
    """A course with an active BKT fit, so every answer updates a stored trace incrementally."""
    settings.ARTIFACT_ROOT = tmp_path
    course = course_with_curriculum("race")
    generator = random.Random(1)
    answers_record(
        course=course,
        rows=[
            {
                "learner": f"sim-{number}",
                "item": generator.choice(ITEMS),
                "correct": int(generator.random() < 0.6),
                "timestamp": (START - timedelta(days=2, minutes=number * 40 - step)).isoformat(),
            }
            for number in range(12)
            for step in range(15)
        ],
    )
    fit = Fit.objects.create(course=course, kind="bkt", params={})
    fit = fit_run(fit_id=fit.pk)
    assert fit.status == Fit.SUCCEEDED, fit.error
    return course


def in_threads(work: Callable[[int, int], None], *, rounds: int, count: int = THREADS) -> None:
    """``work(number, round)`` in ``count`` threads released together, round after round."""
    for round_ in range(rounds):
        together(lambda number: work(number, round_), count)


def assert_matches_replay(course, external_id: str, answers: int) -> None:
    learner = Learner.objects.get(course=course, external_id=external_id)
    assert Interaction.objects.filter(learner=learner).count() == answers
    model = course_model(course)
    replayed = _replay(model, learner)
    trace = LearnerState.from_json(LearnerTrace.objects.get(learner=learner, fit=model.fit).state)
    np.testing.assert_allclose(trace.mastery, replayed.mastery, atol=1e-9, err_msg=f"trace of {external_id}")
    assert trace.at == replayed.at
    stored = dict(Mastery.objects.filter(learner=learner).values_list("skill__external_id", "probability"))
    expected = dict(zip(model.estimator.skill_ids, replayed.mastery.tolist()))
    assert stored.keys() == expected.keys()
    np.testing.assert_allclose(
        [stored[s] for s in expected], list(expected.values()), atol=1e-9, err_msg=f"mastery of {external_id}"
    )


def test_parallel_answers_for_one_learner_match_a_replay(fitted_course):
    """Rounds of 8 answers at once, stamped on arrival (no timestamp sent), as from a busy LMS, through
    the service, the REST API and xAPI in turn."""
    rounds = 4
    answers_record(course=fitted_course, rows=[{"learner": "ada", "item": "q1", "correct": 1}])
    key = key_for(fitted_course)
    base = f"/api/v1/courses/{fitted_course.slug}"

    def post(number: int, round_: int) -> None:
        item, correct = ITEMS[(number + round_) % 4], (number + round_) % 3 > 0
        if number % 3 == 0:
            answers_record(
                course=fitted_course,
                rows=[{"id": f"t{number}-{round_}", "learner": "ada", "item": item, "correct": correct}],
            )
            return
        if number % 3 == 1:
            response = client_for(key).post(
                f"{base}/interactions",
                {"id": f"t{number}-{round_}", "learner": "ada", "item": item, "correct": int(correct)},
                format="json",
            )
        else:
            response = client_for(key).post(
                f"{base}/xapi/statements",
                {
                    "id": str(uuid.UUID(int=number * 100 + round_)),
                    "actor": {"account": {"name": "ada"}},
                    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                    "object": {"id": f"https://lms.example/activities/{item}"},
                    "result": {"success": correct},
                },
                format="json",
            )
        assert response.status_code == 201, response.content

    in_threads(post, rounds=rounds)
    assert_matches_replay(fitted_course, "ada", 1 + THREADS * rounds)


def test_parallel_batches_over_several_learners_match_a_replay_and_do_not_deadlock(fitted_course):
    """Each batch names the same learners in a different order (and creates some of them)."""
    learners = ["ada", "bob", "cy", "sim-1"]
    rounds = 3
    key = key_for(fitted_course)

    def post(number: int, round_: int) -> None:
        order = learners[number % 4 :] + learners[: number % 4]
        rows = [
            {
                "id": f"b{number}-{round_}-{name}",
                "learner": name,
                "item": ITEMS[(number + round_ + n) % 4],
                "correct": (number + n + round_) % 2,
            }
            for n, name in enumerate(order)
        ]
        response = client_for(key).post(f"/api/v1/courses/{fitted_course.slug}/interactions", rows, format="json")
        assert response.status_code == 201, response.content

    in_threads(post, rounds=rounds)
    for name in learners:
        before = 15 if name.startswith("sim-") else 0
        assert_matches_replay(fitted_course, name, before + THREADS * rounds)


def test_the_lock_is_one_query_taken_before_the_answer_goes_in_and_the_state_is_read(fitted_course):
    from django.db import connection as default
    from django.test.utils import CaptureQueriesContext

    answers_record(course=fitted_course, rows=[{"learner": "ada", "item": "q1", "correct": 1}])
    with CaptureQueriesContext(default) as queries:
        answers_record(course=fitted_course, rows=[{"learner": "ada", "item": "q2", "correct": 0}])
    statements = [query["sql"] for query in queries.captured_queries]
    locks = [n for n, sql in enumerate(statements) if "FOR NO KEY UPDATE" in sql]
    assert len(locks) == 1, statements
    insert = next(n for n, sql in enumerate(statements) if sql.startswith('INSERT INTO "tutor_interaction"'))
    trace = next(n for n, sql in enumerate(statements) if "tracing_learnertrace" in sql)
    assert locks[0] < insert < trace


def test_answers_recorded_while_fits_activate_match_a_replay_under_the_new_fit(fitted_course):
    """A fit reads the course, fits, then activates, while 7 threads keep answering for 4 learners."""
    learners = ["ada", "bob", "sim-1", "sim-2"]
    fitting = threading.Event()
    fitting.set()
    posted = [0] * THREADS

    def work(number: int, round_: int) -> None:
        if number == 0:
            for params in ({"forgets": True}, {}):
                fit = fit_run(fit_id=Fit.objects.create(course=fitted_course, kind="bkt", params=params).pk)
                assert fit.status == Fit.SUCCEEDED, fit.error
            fitting.clear()
            return
        while fitting.is_set() or posted[number] < 3:
            answers_record(
                course=fitted_course,
                rows=[
                    {
                        "id": f"f{number}-{posted[number]}",
                        "learner": learners[number % 4],
                        "item": ITEMS[(number + posted[number]) % 4],
                        "correct": (number * posted[number]) % 3 > 0,
                    }
                ],
            )
            posted[number] += 1

    in_threads(work, rounds=1)
    for name in learners:
        before = 15 if name.startswith("sim-") else 0
        assert_matches_replay(
            fitted_course,
            name,
            before + sum(count for number, count in enumerate(posted) if number and learners[number % 4] == name),
        )
