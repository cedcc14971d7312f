"""psikt's learner traits in the service (issue 17, items 3 and 4): re-inferred as answers arrive,
stored, shown with their uncertainty in the API and on the pages, erased with the learner, safe under
concurrent answers; and the periodic absorb, a new fit that folds new learners into the course
posterior without a refit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.threads import together
from tests.tutor.api_support import client_for, key_for
from tests.tutor.conftest import answers_simulate, demo_course_create
from tests.tutor.test_privacy import references
from tracing import services
from tracing.models import Fit, LearnerTrace, LearnerTraits
from tracing.services import course_model, fit_create, learner_state
from tracing.tasks import fits_absorb
from tutor.actions import answers_record
from tutor.models import Learner
from tutor.privacy import learner_erase

pytestmark = pytest.mark.django_db(transaction=False)

PARAMS = {"steps": 4, "batch_size": 16, "max_length": 40, "absorb_steps": 2, "threads": 1}
START = datetime(2026, 11, 1, 9, tzinfo=UTC)


@pytest.fixture
def fitted(isolated_models, django_capture_on_commit_callbacks):
    course = demo_course_create()
    answers_simulate(course, learners=8, answers=12)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=course, kind="psikt", params=PARAMS)
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error
    return course, fit


def _answers(course, learner: str, count: int, *, offset: int = 0) -> list[dict]:
    items = list(course.items.order_by("id").values_list("external_id", flat=True))
    return [
        {
            "id": f"{learner}-{offset + step}",
            "learner": learner,
            "item": items[(offset + step) % len(items)],
            "correct": (offset + step) % 3 != 0,
            "timestamp": (START + timedelta(minutes=5 * (offset + step))).isoformat(),
        }
        for step in range(count)
    ]


def _record(course, rows, capture):
    with capture(execute=True):
        return answers_record(course=course, rows=rows)


def test_a_learners_traits_are_re_inferred_stored_and_shown_after_their_answers(
    fitted, django_capture_on_commit_callbacks
):
    course, fit = fitted
    _record(course, _answers(course, "newcomer", 6), django_capture_on_commit_callbacks)
    learner = Learner.objects.get(course=course, external_id="newcomer")
    row = LearnerTraits.objects.get(fit=fit, learner=learner)
    assert row.answers == 6 and len(row.loc) == len(row.scale) == 5
    population = course_model(course).estimator.arrays["population_loc"]
    assert not np.allclose(row.loc, population), "the traits did not move from the population's"
    # The learner's state (what predicts their next answers) carries the re-inferred traits.
    state = learner_state(learner=learner, model=course_model(course))
    assert np.allclose(state.memory["trait_loc"], row.loc)

    api = client_for(key_for(course))
    body = api.get(f"/api/v1/courses/{course.slug}/learners/newcomer/mastery").json()
    assert body["traits_source"] == "learner" and body["traits_answers"] == 6
    assert set(body["traits"]["learning_speed"]) >= {"mean", "sd"} and body["traits"]["learning_speed"]["sd"] > 0
    assert body["traits_words"] and any("learn" in words for words in body["traits_words"])

    _record(course, _answers(course, "newcomer", 4, offset=6), django_capture_on_commit_callbacks)
    assert LearnerTraits.objects.get(fit=fit, learner=learner).answers == 10


def test_a_learner_without_answers_is_shown_the_population_traits_labelled_as_such(fitted, staff_user, client):
    course, _ = fitted
    learner = Learner.objects.create(course=course, external_id="silent")
    api = client_for(key_for(course))
    body = api.get(f"/api/v1/courses/{course.slug}/learners/silent/mastery").json()
    assert body["traits_source"] == "population" and body["traits_answers"] == 0
    assert body["traits"] and body["traits_words"]
    client.force_login(staff_user)
    html = client.get(reverse("dashboard_learner", args=[course.slug, learner.pk])).content.decode()
    assert "Population traits" in html


def test_the_teachers_learner_page_shows_the_traits_in_words_with_their_uncertainty(
    fitted, staff_user, client, django_capture_on_commit_callbacks
):
    course, _ = fitted
    _record(course, _answers(course, "shown", 5), django_capture_on_commit_callbacks)
    learner = Learner.objects.get(course=course, external_id="shown")
    client.force_login(staff_user)
    html = client.get(reverse("dashboard_learner", args=[course.slug, learner.pk])).content.decode()
    assert "this learner&#x27;s 5 answers" in html or "this learner's 5 answers" in html
    assert "± " in html and ("Learns" in html or "Not sure yet how fast they learn" in html)


def test_the_learners_own_map_page_shows_their_traits_in_words(
    fitted, learner_client, learner_user, django_capture_on_commit_callbacks
):
    course, _ = fitted
    page = learner_client.get(reverse("learn_mastery", args=[course.slug])).content.decode()
    assert "How you learn" in page and "a typical learner" in page  # no answers yet: the population's
    learner = Learner.objects.get(course=course, user=learner_user)
    _record(course, _answers(course, learner.external_id, 5), django_capture_on_commit_callbacks)
    page = learner_client.get(reverse("learn_mastery", args=[course.slug])).content.decode()
    assert "From your 5 answers" in page


def test_erasure_removes_the_learners_traits(fitted, django_capture_on_commit_callbacks):
    course, fit = fitted
    _record(course, _answers(course, "leaving", 5), django_capture_on_commit_callbacks)
    pk = Learner.objects.get(course=course, external_id="leaving").pk
    assert "tracing.LearnerTraits.learner_id: 1" in references(learner_pks={pk}, user_pks=set(), texts={"leaving"})
    with django_capture_on_commit_callbacks(execute=True):
        erasure = learner_erase(course=course, external_id="leaving", confirm="leaving", by="test")
    assert not Learner.objects.filter(course=course, external_id="leaving").exists()
    assert LearnerTraits.objects.filter(fit=fit).count() == 0
    assert erasure.counts["tracing.LearnerTraits"] == 1
    assert references(learner_pks={pk}, user_pks=set(), texts={"leaving"}) == []


def test_the_absorb_task_makes_an_activated_fit_whose_predictions_use_the_absorbed_learners_traits(
    fitted, django_capture_on_commit_callbacks
):
    course, parent = fitted
    # New answers with the refresh off, so what moves the traits here is the absorb alone.
    for name in ("late-1", "late-2", "late-3"):
        with django_capture_on_commit_callbacks(execute=False):
            answers_record(course=course, rows=_answers(course, name, 8))
    # A learner the parent was fitted on answers again: absorbed from their stored state, new answers only.
    now = datetime.now(UTC)
    later = [
        {**row, "timestamp": (now - timedelta(minutes=5 - index)).isoformat()}
        for index, row in enumerate(_answers(course, "sim-00", 2))
    ]
    with django_capture_on_commit_callbacks(execute=False):
        answers_record(course=course, rows=later)
    with django_capture_on_commit_callbacks(execute=True):
        queued = fits_absorb()
    assert len(queued) == 1
    absorb = Fit.objects.get(pk=queued[0].pk)
    assert absorb.status == Fit.SUCCEEDED and absorb.active, absorb.error
    assert absorb.parent_id == parent.pk and absorb.kind == "psikt"
    absorbed = absorb.metrics["absorbed"]
    assert absorbed["new_learners"] == 3 and absorbed["learners"] == 4 and absorbed["answers"] == 26
    assert not Fit.objects.get(pk=parent.pk).active
    api = client_for(key_for(course))
    assert api.get(f"/api/v1/courses/{course.slug}/fits/{absorb.pk}").json()["parent"] == parent.pk
    model = course_model(course)
    assert model.fit.pk == absorb.pk
    for name in ("late-1", "late-2", "late-3"):
        learner = Learner.objects.get(course=course, external_id=name)
        state = learner_state(learner=learner, model=model)
        own = model.estimator.learner_state(name)
        assert model.estimator.knows_learner(name)
        assert np.allclose(state.memory["trait_loc"], own.memory["trait_loc"])
        assert not np.allclose(own.memory["trait_loc"], model.estimator.arrays["population_loc"])
        assert np.allclose(state.mastery, own.mastery, atol=1e-6)
    # Nothing new since: no absorb.
    with django_capture_on_commit_callbacks(execute=True):
        assert fits_absorb() == []


def test_the_absorb_command_absorbs_a_courses_new_answers(fitted, django_capture_on_commit_callbacks):
    course, parent = fitted
    with django_capture_on_commit_callbacks(execute=False):
        answers_record(course=course, rows=_answers(course, "cron-learner", 6))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction never commits
        call_command("absorb", "--course", course.slug, stdout=out)
    (result,) = json.loads(out.getvalue())
    absorb = Fit.objects.get(pk=result["id"])
    assert absorb.status == Fit.SUCCEEDED and absorb.active and absorb.metrics["absorbed"]["answers"] == 6
    assert absorb.parent_id == parent.pk
    with pytest.raises(CommandError, match="nowhere"):
        call_command("absorb", "--course", "nowhere")


def test_two_answers_of_one_learner_at_once_lose_no_trait_update(
    postgresql, isolated_models, django_capture_on_commit_callbacks, transactional_db
):
    course = demo_course_create()
    answers_simulate(course, learners=6, answers=10)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=course, kind="psikt", params=PARAMS)
    fit.refresh_from_db()
    assert fit.active, fit.error
    answers_record(course=course, rows=_answers(course, "busy", 3))

    def answer(number: int) -> int:
        return answers_record(course=course, rows=_answers(course, "busy", 1, offset=3 + number)).created_count

    assert sum(together(answer, 4)) == 4
    learner = Learner.objects.get(course=course, external_id="busy")
    row = LearnerTraits.objects.get(fit=fit, learner=learner)
    assert row.answers == 7, "a refresh from fewer answers overwrote a later one, or one was lost"
    trace = LearnerTrace.objects.get(learner=learner)
    assert trace.fit_id == fit.pk and np.allclose(trace.state["memory"]["trait_loc"], row.loc)
    assert services.fits_background_wait(30)


def test_a_fit_of_the_papers_dynamics_serves_traits_and_mastery_through_the_service(
    isolated_models, django_capture_on_commit_callbacks
):
    course = demo_course_create()
    answers_simulate(course, learners=8, answers=12)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=course, kind="psikt", params={**PARAMS, "dynamics": "ou"})
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED and fit.params["dynamics"] == "ou", fit.error
    assert course_model(course).estimator.dynamics == "ou"
    _record(course, _answers(course, "newcomer", 6), django_capture_on_commit_callbacks)
    body = client_for(key_for(course)).get(f"/api/v1/courses/{course.slug}/learners/newcomer/mastery").json()
    assert body["traits_source"] == "learner" and body["traits_answers"] == 6
    # The paper's four traits: no learning speed, and no words about it.
    assert set(body["traits"]) == {"forgetting_rate", "long_run_level", "volatility", "prerequisite_gain"}
    assert not any("learn" in words for words in body["traits_words"])
