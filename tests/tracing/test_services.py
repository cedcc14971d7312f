"""The fit pipeline on the Django side: activation, failure isolation, progress, bad requests."""

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from core.errors import ServiceError
from curriculum.models import Course
from curriculum.services import course_from_document, curriculum_import
from tracing import estimators
from tracing.estimators.base import LearnerState
from tracing.estimators.baselines import SkillRate
from tracing.estimators.bkt import BKT
from tracing.models import Fit, LearnerTrace, Mastery
from tracing.services import _replay, course_model, fit_create
from tutor.actions import answers_record
from tutor.demo import demo_document
from tutor.models import Learner
from tutor.services import interaction_record

pytestmark = pytest.mark.django_db


class Exploding(SkillRate):
    """A real estimator whose fit fails half-way, as a diverging model would."""

    def fit(self, data, *, seed=0, progress=None):
        if progress:
            progress("epoch", 0.5)
        raise FloatingPointError("loss became NaN")


def run_fit(course, kind, params=None, *, capture):
    with capture(execute=True):
        fit = fit_create(course=course, kind=kind, params=params)
    fit.refresh_from_db()
    return fit


def test_a_fit_activates_stores_metrics_and_recomputes_mastery(demo, django_capture_on_commit_callbacks):
    fit = run_fit(demo, "rate", capture=django_capture_on_commit_callbacks)
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error
    assert fit.metrics["next_step"]["n"] > 0 and 0 <= fit.metrics["next_step"]["auc"] <= 1
    assert fit.snapshot["learners"] == 20 and fit.progress == 1.0
    assert Path(fit.artifact).suffix == ".rate"
    assert Mastery.objects.filter(fit=fit).count() == 20 * demo.skills.count()
    assert course_model(demo).fit == fit


def test_a_failed_fit_leaves_the_previous_one_active(demo, django_capture_on_commit_callbacks, monkeypatch):
    good = run_fit(demo, "rate", capture=django_capture_on_commit_callbacks)
    monkeypatch.setitem(estimators.ESTIMATORS, "exploding", f"{__name__}.Exploding")
    bad = run_fit(demo, "exploding", capture=django_capture_on_commit_callbacks)
    assert bad.status == Fit.FAILED and "NaN" in bad.error and not bad.active
    good.refresh_from_db()
    assert good.active and course_model(demo).fit == good


def test_a_second_fit_replaces_the_first(demo, django_capture_on_commit_callbacks):
    first = run_fit(demo, "rate", capture=django_capture_on_commit_callbacks)
    second = run_fit(demo, "rate", {"prior_strength": 2.0}, capture=django_capture_on_commit_callbacks)
    first.refresh_from_db()
    assert second.active and not first.active
    assert Fit.objects.filter(course=demo, active=True).count() == 1


@pytest.mark.parametrize(
    "kind,params,code",
    [
        ("nope", {}, "unknown_model"),
        ("rate", {"prior_strength": -1}, "invalid_params"),
        ("rate", {"bogus": 1}, "invalid_params"),
        ("rate", [1, 2], "invalid_params"),
    ],
)
def test_bad_fit_requests_are_refused_before_queueing(demo, kind, params, code):
    with pytest.raises(ServiceError) as error:
        fit_create(course=demo, kind=kind, params=params)
    assert error.value.code == code and error.value.status == 400
    assert not Fit.objects.exists()


def test_online_update_uses_the_active_fit(demo, django_capture_on_commit_callbacks):
    fit = run_fit(demo, "rate", capture=django_capture_on_commit_callbacks)
    item = demo.items.first()
    skill = item.skills.first().external_id
    before = course_model(demo).estimator.initial_state().mastery
    result = answers_record(
        course=demo,
        rows=[{"learner": "new", "item": item.external_id, "correct": 1, "timestamp": "2026-11-25T10:00:00Z"}],
    )
    index = course_model(demo).skill_index[skill]
    assert result.mastery["new"][skill] > before[index]
    assert Mastery.objects.get(learner__external_id="new", skill__external_id=skill).fit == fit


def test_fit_command_reports_and_fails_cleanly(demo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("fit", "--course", demo.slug, "--model", "rate")
    assert Fit.objects.filter(status=Fit.SUCCEEDED).count() == 1
    with pytest.raises(CommandError, match="not JSON"):
        call_command("fit", "--course", demo.slug, "--model", "rate", "--params", "{oops")


def tiny_course_create(*, learners: int, answers: int):
    """The demo curriculum with ``learners`` learners of ``answers`` answers each, stored through the service."""
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    items = list(course.items.order_by("id").values_list("external_id", flat=True))[:6]
    answers_record(
        course=course,
        rows=[
            {
                "learner": f"l{number}",
                "item": items[(number + step) % 6],
                "correct": (number * step + step) % 3 > 0,
                "timestamp": f"2026-11-25T10:{step:02d}:00Z",
            }
            for number in range(learners)
            for step in range(answers)
        ],
    )
    return course


@pytest.mark.parametrize("kind", ["bkt", "rate"])
def test_a_tiny_course_fits_and_says_how_many_learners_the_multistep_evaluation_skipped(
    kind, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.ARTIFACT_ROOT = tmp_path
    course = tiny_course_create(learners=6, answers=8)  # held-out learners have 8 answers: fewer than the horizon
    fit = run_fit(course, kind, capture=django_capture_on_commit_callbacks)
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error
    multi_step = fit.metrics["multi_step"]
    assert multi_step["n"] == 0 and multi_step["learners"] == 0
    assert multi_step["skipped_learners"] == fit.metrics["test_learners"] > 0
    assert fit.metrics["next_step"]["n"] == 8 * fit.metrics["test_learners"]


class AnsweredDuringTheFit(BKT):
    """BKT, while a learner answers once part way through the fit (a deep fit takes minutes)."""

    def fit(self, data, *, seed=0, progress=None):
        if not ANSWERS_DURING_FIT:
            ANSWERS_DURING_FIT.append(
                answers_record(
                    course=Course.objects.get(slug="arithmetic"),
                    rows=[{"id": "late-1", "learner": "sim-01", "item": data.item_ids[0], "correct": 1}],
                )
            )
        return super().fit(data, seed=seed, progress=progress)


ANSWERS_DURING_FIT: list = []


def test_answers_stored_while_a_fit_runs_are_in_its_mastery(demo, django_capture_on_commit_callbacks, monkeypatch):
    run_fit(demo, "bkt", capture=django_capture_on_commit_callbacks)  # the model answers are recorded under
    monkeypatch.setitem(estimators.ESTIMATORS, "busy", f"{__name__}.AnsweredDuringTheFit")
    ANSWERS_DURING_FIT.clear()
    fit = run_fit(demo, "busy", capture=django_capture_on_commit_callbacks)
    assert fit.status == Fit.SUCCEEDED and fit.active and ANSWERS_DURING_FIT, fit.error
    model = course_model(demo)
    learner = Learner.objects.get(course=demo, external_id="sim-01")
    replayed = _replay(model, learner)
    trace = LearnerState.from_json(LearnerTrace.objects.get(learner=learner, fit=fit).state)
    assert trace.at == replayed.at
    np.testing.assert_allclose(trace.mastery, replayed.mastery, atol=1e-9)
    stored = dict(Mastery.objects.filter(learner=learner).values_list("skill__external_id", "probability"))
    np.testing.assert_allclose([stored[s] for s in model.estimator.skill_ids], replayed.mastery, atol=1e-9)


def test_an_answer_recorded_on_the_previous_fit_is_not_lost_to_the_new_one(
    demo, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """Another process serves the previous fit for up to TRACING_MODEL_RECHECK seconds after a new one is
    activated; what it records there must still reach the new fit's trace."""
    run_fit(demo, "bkt", capture=django_capture_on_commit_callbacks)
    settings.TRACING_MODEL_RECHECK = 3600.0
    previous = course_model(demo)
    monkeypatch.setattr("tracing.services.course_model_forget", lambda course: None)  # activated "elsewhere"
    monkeypatch.setattr("tracing.services.time.sleep", lambda seconds: None)  # the settling pass's wait
    fit = run_fit(demo, "bkt", {"forgets": True}, capture=django_capture_on_commit_callbacks)
    assert fit.active and course_model(demo).fit == previous.fit  # this process has not seen it yet
    item = demo.items.order_by("id").first().external_id
    answers_record(course=demo, rows=[{"learner": "sim-02", "item": item, "correct": 1}])
    settings.TRACING_MODEL_RECHECK = 0.0  # the process reads the change
    answers_record(course=demo, rows=[{"learner": "sim-02", "item": item, "correct": 0}])
    model = course_model(demo)
    assert model.fit == fit
    learner = Learner.objects.get(course=demo, external_id="sim-02")
    replayed = _replay(model, learner)
    trace = LearnerState.from_json(LearnerTrace.objects.get(learner=learner, fit=fit).state)
    np.testing.assert_allclose(trace.mastery, replayed.mastery, atol=1e-9)
    assert trace.at == replayed.at


def test_a_fit_leaves_out_learners_and_items_that_arrive_while_it_reads_the_course(demo, monkeypatch):
    """The fit reads the vocabulary, then the learners' names, then the answers: a learner or an item
    created in between (a class answering while the fit starts) must not fail the fit."""
    from curriculum.models import Item
    from tracing import selectors

    vocabulary = selectors.course_vocabulary(course=demo)
    skill = demo.skills.order_by("id").first()
    late_item = Item.objects.create(course=demo, external_id="late-item")
    late_item.skills.add(skill)
    real_dataset = selectors._dataset

    def answers_arrive_first(course, vocabulary, queryset, names):
        interaction_record(
            course=course,
            rows=[  # stored only: the fit's own read is what is tested
                {"learner": "late-learner", "item": vocabulary.item_ids[0], "correct": 1},
                {"learner": "sim-01", "item": "late-item", "correct": 0},
            ],
        )
        return real_dataset(course, vocabulary, queryset, names)

    monkeypatch.setattr(selectors, "_dataset", answers_arrive_first)
    data = selectors.interactions_for_fit(course=demo, vocabulary=vocabulary)
    assert "late-learner" not in data.learner_ids and len(data.learner_ids) == 20
    assert "late-item" not in data.item_ids
    assert data.item.max() < len(vocabulary.item_ids)


def test_a_psikt_fit_starts_its_graph_from_declared_prerequisites(demo, django_capture_on_commit_callbacks):
    pytest.importorskip("pyro")
    from curriculum.selectors import prerequisites_authored

    declared = prerequisites_authored(course=demo)
    assert declared
    fit = run_fit(demo, "psikt", {"steps": 5, "threads": 1}, capture=django_capture_on_commit_callbacks)
    assert fit.status == Fit.SUCCEEDED, fit.error
    estimator = course_model(demo).estimator
    skills = estimator.skill_ids
    probability = estimator.edge_probabilities()
    declared_pairs = [(skills.index(a), skills.index(b)) for a, b in declared]
    assert min(probability[pair] for pair in declared_pairs) > 0.5
    others = probability.copy()
    for pair in declared_pairs:
        others[pair] = 0.0
    assert others.max() < 0.5
