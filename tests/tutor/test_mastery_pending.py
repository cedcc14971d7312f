"""Issue 18: readers are told when a learner's stored mastery leaves out answers a file import stored
(``mastery_pending``), and a refresh that an import did not finish is finished by the sweep (celery beat's
``tutor.tasks.mastery_pending_task``, or ``manage.py mastery_refresh`` without a broker)."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from curriculum.models import Course
from tests.threads import postgresql, together  # noqa: F401 - postgresql is a fixture
from tests.tutor.api_support import client_for, key_for
from tests.tutor.test_import_scale import _mastery_is_the_replay, write_csv
from tracing.models import Mastery
from tracing.services import mastery_refresh_pending
from tutor.actions import answers_import
from tutor.models import Learner, LearnerActivity
from tutor.tasks import mastery_pending_task

pytestmark = pytest.mark.django_db


def _stopped(**kwargs):
    raise RuntimeError("the import's process ended here")


def _import_unrefreshed(tmp_path, slug="big", rows=120, path=None):
    """An import whose process ended after its commit, before its mastery refresh ran."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tutor.actions.mastery_refresh_pending", _stopped)
        with pytest.raises(RuntimeError):
            answers_import(course_slug=slug, path=path or write_csv(tmp_path / f"{slug}.csv", rows), format="csv")
    return Course.objects.get(slug=slug)


def _pending(course):
    return set(LearnerActivity.objects.filter(course=course, mastery_pending=True).values_list("learner_id", flat=True))


def test_the_mastery_api_says_when_imported_answers_are_not_in_the_mastery_yet(tmp_path):
    course = _import_unrefreshed(tmp_path)
    api = client_for(key_for(course))
    body = api.get(f"/api/v1/courses/{course.slug}/learners/u1/mastery").json()
    assert body["mastery_pending"] is True and body["mastery"] == []
    call_command("mastery_refresh", "--course", course.slug, stdout=StringIO())
    body = api.get(f"/api/v1/courses/{course.slug}/learners/u1/mastery").json()
    assert body["mastery_pending"] is False and body["mastery"]


def test_an_api_answer_leaves_no_pending_mark(tmp_path):
    answers_import(course_slug="big", path=write_csv(tmp_path / "big.csv", 60), format="csv")
    course = Course.objects.get(slug="big")
    api = client_for(key_for(course))
    assert api.get(f"/api/v1/courses/{course.slug}/learners/u1/mastery").json()["mastery_pending"] is False
    assert not _pending(course)


def test_the_command_finishes_every_course_an_import_left_pending(tmp_path):
    first, second = _import_unrefreshed(tmp_path, "first"), _import_unrefreshed(tmp_path, "second", rows=48)
    assert len(_pending(first)) == 12 and len(_pending(second)) == 12
    assert not Mastery.objects.exists()
    out = StringIO()
    call_command("mastery_refresh", stdout=out)
    assert json.loads(out.getvalue()) == {"mastery_updated": {"first": 12, "second": 12}}
    assert not _pending(first) and not _pending(second)
    _mastery_is_the_replay(first)
    _mastery_is_the_replay(second)
    out = StringIO()
    call_command("mastery_refresh", stdout=out)  # nothing left: nothing done
    assert json.loads(out.getvalue()) == {"mastery_updated": {}}


def test_the_command_names_a_course_that_does_not_exist():
    with pytest.raises(CommandError, match="nope"):
        call_command("mastery_refresh", "--course", "nope", stdout=StringIO())


def test_celery_beats_sweep_finishes_what_an_import_left_and_runs_on_maintenance(tmp_path):
    course = _import_unrefreshed(tmp_path)
    assert mastery_pending_task.apply().get() == {"big": 12}
    assert not _pending(course)
    _mastery_is_the_replay(course)
    schedule = {entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["tutor.tasks.mastery_pending_task"] == django_settings.TUTOR_PENDING_SWEEP_EVERY == 300.0
    assert django_settings.CELERY_TASK_ROUTES["tutor.tasks.mastery_pending_task"] == {"queue": "maintenance"}


def test_the_pages_say_the_mastery_is_being_updated(tmp_path, client, staff_user, learner_user):
    answers_import(course_slug="big", path=write_csv(tmp_path / "first.csv", 24), format="csv")
    course = Course.objects.get(slug="big")
    course.open_to_all = True
    course.save(update_fields=["open_to_all"])
    client.force_login(learner_user)
    assert "mastery-pending" not in client.get(reverse("learn_mastery", args=[course.slug])).content.decode()
    own = Learner.objects.get(course=course, user=learner_user)
    path = tmp_path / "second.csv"
    path.write_text(
        "learner,item,skill,correct,timestamp\n"
        + "".join(f"{own.external_id},i{n},s{n % 3},1,{1_700_000_000 + n}\n" for n in range(6)),
        encoding="utf-8",
    )
    _import_unrefreshed(tmp_path, path=path)
    page = client.get(reverse("learn_mastery", args=[course.slug])).content.decode()
    assert 'id="mastery-pending"' in page and "being updated" in page
    client.force_login(staff_user)
    page = client.get(reverse("dashboard_learner", args=[course.slug, own.pk])).content.decode()
    assert 'id="mastery-pending"' in page and "not in this mastery yet" in page
    call_command("mastery_refresh", stdout=StringIO())
    assert (
        "mastery-pending" not in client.get(reverse("dashboard_learner", args=[course.slug, own.pk])).content.decode()
    )


@pytest.mark.parametrize("value", ["0", "-5", "nan", "soon"])
def test_a_bad_sweep_interval_stops_the_start(value):
    environment = {"TUTOR_PENDING_SWEEP_EVERY": value, "DJANGO_SETTINGS_MODULE": "tutor.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
    )
    assert result.returncode != 0 and "TUTOR_PENDING_SWEEP_EVERY" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_sweeps_and_an_imports_refresh_at_once_refresh_each_learner_once(tmp_path, postgresql):
    """celery beat's sweep may start while an import's own refresh runs (or two sweeps on two workers): each
    batch re-reads the marks under its learners' locks, so every learner is written by one of them, none
    waits for ever, and the mastery is the replay of the stored history."""
    course = _import_unrefreshed(tmp_path, rows=600)
    learners = sorted(Learner.objects.filter(course=course).values_list("pk", flat=True))
    done = together(lambda number: mastery_refresh_pending(course=course, batch=2), count=4)
    assert sorted(pk for refreshed in done for pk in refreshed) == learners  # each once
    assert not _pending(course)
    _mastery_is_the_replay(course)
