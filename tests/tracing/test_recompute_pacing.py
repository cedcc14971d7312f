"""Issue 18 item 6: a fit's mastery recompute paced (TRACING_RECOMPUTE_PAUSE) and batched
(TRACING_RECOMPUTE_BATCH) so the web keeps its share of the machine; what it writes is the same."""

import os
import subprocess
import sys

import pytest
from django.db import transaction

from curriculum.models import Course, Item
from tests.stored import mastery_and_traces
from tracing import services
from tracing.models import Fit
from tracing.selectors import course_vocabulary, interactions_for_fit
from tracing.services import Pacer, course_model, fit_create, mastery_recompute
from tutor.actions import answers_import
from tutor.models import Interaction, Learner


def _course(tmp_path, rows: int = 240) -> Course:
    lines = ["learner,item,skill,correct,timestamp"]
    lines += [f"u{n % 12},i{n % 9},s{n % 3},{(n * 7) % 3 % 2},{1_600_000_000 + n * 37}" for n in range(rows)]
    (tmp_path / "answers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    answers_import(course_slug="paced", path=tmp_path / "answers.csv", format="csv")
    return Course.objects.get(slug="paced")


@pytest.mark.django_db
def test_a_paced_recompute_in_small_batches_writes_what_one_unpaced_batch_does(
    tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.ARTIFACT_ROOT = tmp_path
    course = _course(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=course, kind="bkt", params={})
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error
    model = course_model(course)
    vocabulary = course_vocabulary(course=course)
    data = interactions_for_fit(course=course, vocabulary=vocabulary)
    late = Learner.objects.filter(course=course).order_by("id")[2]  # answered after the fit read the course
    Interaction.objects.create(
        course=course,
        learner=late,
        item=Item.objects.filter(course=course).first(),
        correct=0.0,
        timestamp=Interaction.objects.filter(learner=late).first().timestamp,
        client_id="late",
    )
    slept: list[float] = []
    monkeypatch.setattr(services.time, "sleep", slept.append)
    results = []
    for batch, pause in ((10**6, 0.0), (5, 2.0)):
        with transaction.atomic():
            count = mastery_recompute(
                course=course,
                fit=model.fit,
                estimator=model.estimator,
                data=data,
                vocabulary=vocabulary,
                batch=batch,
                pause=pause,
            )
            results.append((count, mastery_and_traces(course)))
            transaction.set_rollback(True)
    assert results[0] == results[1] and results[0][0] == 12
    # 12 learners in batches of 5 (3; the late learner is replayed within its own): a pause before each
    # but the first.
    assert len(slept) == 2 and all(wait >= 0 for wait in slept)


@pytest.mark.django_db
def test_the_recompute_reads_its_batch_and_pause_from_the_settings(
    tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.ARTIFACT_ROOT = tmp_path
    course = _course(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        fit_create(course=course, kind="bkt", params={})
    model = course_model(course)
    vocabulary = course_vocabulary(course=course)
    data = interactions_for_fit(course=course, vocabulary=vocabulary)
    settings.TRACING_RECOMPUTE_BATCH, settings.TRACING_RECOMPUTE_PAUSE = 4, 0.5
    slept: list[float] = []
    monkeypatch.setattr(services.time, "sleep", slept.append)
    with transaction.atomic():
        mastery_recompute(course=course, fit=model.fit, estimator=model.estimator, data=data, vocabulary=vocabulary)
    assert len(slept) == 2  # 12 learners in batches of 4: paused before the second and the third


def test_the_pacer_sleeps_pause_times_the_step_before_and_never_before_the_first(monkeypatch):
    # Step 1 starts at 10 and takes 3 s; step 2 starts at 13.5 and takes 0.5 s; step 3 starts at 15.
    clock = iter([10.0, 13.0, 13.5, 14.0, 15.0, 20.0, 21.0])
    monkeypatch.setattr(services.time, "perf_counter", lambda: next(clock))
    slept: list[float] = []
    monkeypatch.setattr(services.time, "sleep", slept.append)
    pacer = Pacer(0.5)
    pacer.step()
    pacer.step()
    pacer.step()
    assert slept == [1.5, 0.25] and pacer.paused == 1.75
    unpaced = Pacer(0.0)
    unpaced.step()
    unpaced.step()
    assert unpaced.paused == 0.0


@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("TRACING_RECOMPUTE_PAUSE", "-1", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_PAUSE", "nan", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_PAUSE", "101", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_PAUSE", "soon", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_PAUSE", "0.25", "500 0.25"),
        ("TRACING_RECOMPUTE_BATCH", "0", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_BATCH", "many", "ImproperlyConfigured"),
        ("TRACING_RECOMPUTE_BATCH", "2000", "2000 1.0"),
    ],
)
def test_the_pacing_settings_are_checked_at_start(name, value, shown):
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TRACING_RECOMPUTE_BATCH, settings.TRACING_RECOMPUTE_PAUSE)"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings", name: value}
    environment.pop("TRACING_RECOMPUTE_PAUSE" if name != "TRACING_RECOMPUTE_PAUSE" else "TRACING_RECOMPUTE_BATCH", None)
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60)
    assert shown in done.stdout + done.stderr
