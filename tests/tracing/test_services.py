"""The fit pipeline on the Django side: activation, failure isolation, progress, bad requests."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curriculum.services import course_from_document, curriculum_import
from tracing import estimators
from tracing.estimators.baselines import SkillRate
from tracing.models import Fit, Mastery
from tracing.services import course_model, fit_create
from tutor.demo import demo_document, demo_history_simulate
from tutor.errors import ServiceError
from tutor.services import interaction_record

pytestmark = pytest.mark.django_db


class Exploding(SkillRate):
    """A real estimator whose fit fails half-way, as a diverging model would."""

    def fit(self, data, *, seed=0, progress=None):
        if progress:
            progress("epoch", 0.5)
        raise FloatingPointError("loss became NaN")


@pytest.fixture
def demo(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    demo_history_simulate(course=course, document=document, learners=20, answers=25)
    return course


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
    assert (Path(fit.artifact).suffix == ".rate")
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


@pytest.mark.parametrize("kind,params,code", [
    ("nope", {}, "unknown_model"), ("rate", {"prior_strength": -1}, "invalid_params"),
    ("rate", {"bogus": 1}, "invalid_params"), ("rate", [1, 2], "invalid_params"),
])
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
    result = interaction_record(course=demo, rows=[{"learner": "new", "item": item.external_id, "correct": 1,
                                                    "timestamp": "2026-11-25T10:00:00Z"}])
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
    interaction_record(course=course, rows=[
        {"learner": f"l{number}", "item": items[(number + step) % 6], "correct": (number * step + step) % 3 > 0,
         "timestamp": f"2026-11-25T10:{step:02d}:00Z"}
        for number in range(learners) for step in range(answers)])
    return course


@pytest.mark.parametrize("kind", ["bkt", "rate"])
def test_a_tiny_course_fits_and_says_how_many_learners_the_multistep_evaluation_skipped(
        kind, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.ARTIFACT_ROOT = tmp_path
    course = tiny_course_create(learners=6, answers=8)  # held-out learners have 8 answers: fewer than the horizon
    fit = run_fit(course, kind, capture=django_capture_on_commit_callbacks)
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error
    multi_step = fit.metrics["multi_step"]
    assert multi_step["n"] == 0 and multi_step["learners"] == 0
    assert multi_step["skipped_learners"] == fit.metrics["test_learners"] > 0
    assert fit.metrics["next_step"]["n"] == 8 * fit.metrics["test_learners"]
