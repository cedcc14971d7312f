"""Fits as a client, a crowd or a careless admin meets them: bounded parameters, a cap per course,
a time limit, and without a broker a background runner that answers at once (issue 15, items 5 and 9)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from core.errors import Conflict, ServiceError
from tests.threads import together
from tests.tutor.api_support import client_for, key_for
from tests.tutor.conftest import answers_simulate
from tracing import estimators, services
from tracing.background import FitRunner, Pending, next_pending
from tracing.estimators.baselines import SkillRate
from tracing.models import Fit
from tutor import actions

GATE = threading.Event()
"""Holds Gated fits until a test opens it (a fit that takes as long as the test needs)."""


class Gated(SkillRate):
    """A real estimator whose fit waits for GATE (at most 20 s), reporting progress as a long fit does."""

    def fit(self, data, *, seed=0, progress=None):
        give_up = time.monotonic() + 20
        while not GATE.is_set() and time.monotonic() < give_up:
            if progress:
                progress("waiting", 0.1)
            GATE.wait(0.02)
        return super().fit(data, seed=seed, progress=progress)


@pytest.fixture
def gated(monkeypatch):
    monkeypatch.setitem(estimators.ESTIMATORS, "gated", f"{__name__}.Gated")
    GATE.clear()
    yield "gated"
    GATE.set()
    assert services.fits_background_wait(30), "the background runner did not finish its fits"


@pytest.fixture
def course(settings, tmp_path, demo_course):
    settings.ARTIFACT_ROOT = tmp_path
    answers_simulate(demo_course, learners=8, answers=12)
    return demo_course


@pytest.fixture
def api(course):
    return client_for(key_for(course))


def fits_url(course, tail=""):
    return f"/api/v1/courses/{course.slug}/fits{tail}"


# ------------------------------------------------------------------ item 9: bounds at request time


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "params", "field"),
    [
        ("hbkt", {"steps": 10**9}, "params.steps"),
        ("bkt", {"max_iter": 10**9}, "params.max_iter"),
        ("bkt", {"restarts": 100}, "params.restarts"),
        ("dkt", {"threads": 64}, "params.threads"),
        ("psikt", {"absorb_steps": 10**6}, "params.absorb_steps"),
        ("dkt", {"hidden": 10**6}, "params.hidden"),
        ("bkt", {"restart": 3}, "params.restart"),
        ("psikt", {"steps": "300"}, "params.steps"),
        ("psikt", {"dynamics": "brownian"}, "params.dynamics"),
        ("psikt", {"dynamics": 1}, "params.dynamics"),
        ("bkt", {"\ud800": 1}, "params"),
        ("bkt", {"max_guess": 10**400}, "params.max_guess"),
        ("bkt", {"shards": 0}, "params.shards"),
        ("bkt", {"shards": 65}, "params.shards"),
        ("bkt", {"shards": "2"}, "params.shards"),
        ("hbkt", {"shards": 2}, "params.shards"),
    ],
)
def test_out_of_bounds_unknown_and_unprintable_parameters_are_a_400_naming_them(course, api, model, params, field):
    # Sent as JSON text: a lone surrogate travels as the escape "\\ud800", as any client would send it.
    response = api.post(
        fits_url(course), json.dumps({"model": model, "params": params}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    # A lone surrogate or a number beyond a float is refused by the strict JSON parser before the
    # parameter check sees it; either way a 400 and nothing stored.
    assert body["code"] in {"invalid_params", "invalid_character", "invalid_number"}
    if body["code"] == "invalid_params":
        assert body["field"] == field
    assert not Fit.objects.exists()


@pytest.mark.django_db
def test_the_dashboard_form_and_the_command_check_the_same_bounds(course, staff_user, client):
    client.force_login(staff_user)
    url = reverse("dashboard_fits", args=[course.slug])
    response = client.post(url, {"model": "hbkt", "params": '{"steps": 1000000000}'})
    assert response.status_code == 400 and b"steps must be in [1, 5000]" in response.content
    response = client.post(url, {"model": "psikt", "params": '{"learning_rate": Infinity}'})
    assert response.status_code == 400 and (b"finite" in response.content or b"JSON" in response.content)
    with pytest.raises(CommandError, match="restarts must be in"):
        call_command("fit", "--course", course.slug, "--model", "bkt", "--params", '{"restarts": 100}')
    with pytest.raises(CommandError, match="finite|not a JSON number"):
        call_command("fit", "--course", course.slug, "--model", "bkt", "--params", '{"tol": NaN}')
    assert not Fit.objects.exists()


def test_the_schema_shows_every_models_parameters_with_their_bounds(client):
    schema = client.get("/api/schema/?format=json").json()
    body = schema["paths"]["/api/v1/courses/{course}/fits"]["post"]["requestBody"]["content"]["application/json"]
    union = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert union["discriminator"]["propertyName"] == "model"
    assert set(union["discriminator"]["mapping"]) == set(estimators.ESTIMATORS)
    shapes = {
        kind: schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        for kind, ref in union["discriminator"]["mapping"].items()
    }
    hbkt = shapes["hbkt"]["properties"]["params"]
    assert hbkt["additionalProperties"] is False
    assert hbkt["properties"]["steps"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5000,
        "default": 300,
        "description": "",
    }
    assert shapes["dkt"]["properties"]["params"]["properties"]["threads"]["maximum"] == 16
    for kind, shape in shapes.items():
        for name, declared in shape["properties"]["params"]["properties"].items():
            if declared["type"] == "string":
                assert declared["enum"], f"{kind}.{name} is a string without its choices in the schema"
            elif declared["type"] != "boolean":
                assert "minimum" in declared and "maximum" in declared, f"{kind}.{name} is unbounded in the schema"
    assert "409" in schema["paths"]["/api/v1/courses/{course}/fits"]["post"]["responses"]


# ------------------------------------------------------------------ item 9: a cap per course


@pytest.mark.django_db
def test_a_course_may_hold_only_so_many_queued_or_running_fits(course, api, settings):
    settings.TRACING_FITS_PER_COURSE = 2
    running = Fit.objects.create(course=course, kind="dkt", status=Fit.RUNNING)
    queued = Fit.objects.create(course=course, kind="bkt", status=Fit.QUEUED)
    response = api.post(fits_url(course), {"model": "rate"}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "fit_in_progress" and f"fit {running.pk} (dkt, running)" in body["message"]
    assert body["detail"]["fits"] == [
        {"id": running.pk, "model": "dkt", "status": "running"},
        {"id": queued.pk, "model": "bkt", "status": "queued"},
    ]
    assert Fit.objects.count() == 2
    Fit.objects.filter(pk=running.pk).update(status=Fit.SUCCEEDED)  # a place frees up
    assert api.post(fits_url(course), {"model": "rate"}, format="json").status_code == 202


@pytest.mark.django_db
def test_the_dashboard_says_which_fit_holds_the_place(course, staff_user, client, settings):
    settings.TRACING_FITS_PER_COURSE = 1
    holder = Fit.objects.create(course=course, kind="psikt", status=Fit.QUEUED)
    client.force_login(staff_user)
    response = client.post(reverse("dashboard_fits", args=[course.slug]), {"model": "rate", "params": ""})
    assert response.status_code == 409 and f"fit {holder.pk} (psikt, queued)".encode() in response.content
    assert Fit.objects.count() == 1


@pytest.mark.django_db
def test_another_courses_fits_do_not_take_this_courses_places(course, api, settings):
    from tests.tutor.api_support import course_with_curriculum

    settings.TRACING_FITS_PER_COURSE = 1
    other = course_with_curriculum("other")
    Fit.objects.create(course=other, kind="dkt", status=Fit.RUNNING)
    assert api.post(fits_url(course), {"model": "rate"}, format="json").status_code == 202


# ------------------------------------------------------------------ item 9: a time limit per fit


class Endless(SkillRate):
    """A fit that would run for a minute, reporting progress as it goes."""

    def fit(self, data, *, seed=0, progress=None):
        for step in range(3000):
            progress("svi", step / 3000)
            time.sleep(0.02)
        return super().fit(data, seed=seed, progress=progress)


def test_the_time_limit_grows_with_the_course_and_is_capped(settings):
    settings.TRACING_FIT_TIME_LIMIT_BASE, settings.TRACING_FIT_TIME_LIMIT_PER_1000_ANSWERS = 600, 10.0
    settings.TRACING_FIT_TIME_LIMIT_MAX = 3 * 3600
    assert services.fit_time_limit(answers=0) == 600
    assert services.fit_time_limit(answers=300_000) == 3600
    assert services.fit_time_limit(answers=10**9) == 3 * 3600


@pytest.mark.django_db
def test_a_fit_past_its_time_limit_fails_and_the_previous_one_stays_active(
    course, settings, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        previous = services.fit_create(course=course, kind="rate")
    previous.refresh_from_db()
    assert previous.active
    monkeypatch.setitem(estimators.ESTIMATORS, "endless", f"{__name__}.Endless")
    settings.TRACING_FIT_TIME_LIMIT_BASE, settings.TRACING_FIT_TIME_LIMIT_MAX = 1, 1
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        fit = services.fit_create(course=course, kind="endless")
    fit.refresh_from_db()
    assert time.monotonic() - started < 10
    assert fit.time_limit == 1 and fit.status == Fit.FAILED and not fit.active
    assert "time limit of 1 s" in fit.error
    previous.refresh_from_db()
    assert previous.active


@pytest.mark.django_db
def test_a_running_fit_long_past_its_limit_no_longer_holds_a_place(course, api, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.TRACING_FITS_PER_COURSE = 1
    lost = Fit.objects.create(
        course=course,
        kind="dkt",
        status=Fit.RUNNING,
        time_limit=600,
        started_at=timezone.now() - timedelta(seconds=600 + services.FIT_REAP_GRACE_S + 5),
    )
    assert api.post(fits_url(course), {"model": "rate"}, format="json").status_code == 202
    lost.refresh_from_db()
    assert lost.status == Fit.FAILED and "time limit of 600 s" in lost.error


@pytest.mark.django_db
def test_a_queued_celery_task_carries_the_fits_time_limit(course, monkeypatch, django_capture_on_commit_callbacks):
    """With a broker the limit goes with the task: Celery stops it (soft, then hard) past the limit.
    The broker is the edge replaced here: what fit_start hands it is what a worker would receive."""
    from tracing.tasks import fit_run_task

    sent = {}

    class Sent:
        id = "task-1"

    def apply_async(**options):
        sent.update(options)
        return Sent()

    monkeypatch.setattr(fit_run_task, "apply_async", apply_async)
    fit_run_task.app.conf.task_always_eager = False  # a broker is named (tests/conftest.py restores it)
    with django_capture_on_commit_callbacks(execute=True):
        fit = actions.fit_start(course=course, kind="rate")
    fit.refresh_from_db()
    assert fit.time_limit == services.fit_time_limit(answers=course.interactions.count()) and fit.task_id == "task-1"
    assert sent["args"] == [fit.pk] and sent["soft_time_limit"] == fit.time_limit
    assert sent["time_limit"] == fit.time_limit + 60 and sent["queue"] == "fits"


@pytest.mark.django_db
def test_work_goes_to_queues_by_kind(course, settings, monkeypatch, django_capture_on_commit_callbacks):
    """CPU fits, GPU fits (only for the kinds a deployment names), LMS passback and maintenance each
    have their queue (README, Configuration), so machines can specialise."""
    from tracing.tasks import fit_run_task
    from tutor.celery import app

    sent = []

    class Sent:
        id = "task-2"

    monkeypatch.setattr(fit_run_task, "apply_async", lambda **options: sent.append(options["queue"]) or Sent())
    fit_run_task.app.conf.task_always_eager = False
    settings.TRACING_GPU_KINDS = ["dkt"]
    settings.TRACING_FITS_PER_COURSE = 5
    with django_capture_on_commit_callbacks(execute=True):
        actions.fit_start(course=course, kind="rate")
        actions.fit_start(course=course, kind="dkt")
    assert sent == ["fits", "fits-gpu"]
    route = app.amqp.router.route
    assert route({}, "tutor.lti.tasks.lti_grade_passback_task")["queue"].name == "lms"
    assert route({}, "tracing.tasks.ping_task")["queue"].name == "maintenance"
    # A plain worker takes every queue but the GPU one.
    assert {queue.name for queue in app.conf.task_queues} == {"celery", "fits", "lms", "maintenance"}


# ------------------------------------------------------------------ item 5: no broker, still 202 at once


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_post_fits_answers_202_while_the_fit_runs_in_the_background(course, api, gated, settings):
    settings.TRACING_FITS_INLINE = False
    started = time.monotonic()
    response = api.post(fits_url(course), {"model": gated}, format="json")
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] in ("queued", "running") and not body["active"]
    assert api.get(fits_url(course, f"/{body['id']}")).json()["status"] in ("queued", "running")
    GATE.set()
    assert services.fits_background_wait(30)
    done = api.get(fits_url(course, f"/{body['id']}")).json()
    assert done["status"] == "succeeded" and done["active"], done["error"]


@pytest.mark.django_db(transaction=True)
def test_the_dashboards_start_fit_returns_at_once(course, staff_user, client, gated, settings):
    settings.TRACING_FITS_INLINE = False
    client.force_login(staff_user)
    started = time.monotonic()
    response = client.post(reverse("dashboard_fits", args=[course.slug]), {"model": gated, "params": ""})
    assert time.monotonic() - started < 5
    assert response.status_code == 302
    fit = Fit.objects.get()
    assert fit.status in (Fit.QUEUED, Fit.RUNNING)
    GATE.set()
    assert services.fits_background_wait(30)
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error


@pytest.mark.django_db(transaction=True)
def test_fits_a_dead_process_left_are_resumed_and_a_live_ones_are_not(course, gated, settings):
    import subprocess
    import sys

    settings.TRACING_FITS_INLINE = False
    GATE.set()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"local:{services.socket.gethostname()}:{ended.stdout.strip()}"
    alive = f"local:{services.socket.gethostname()}:{os.getppid()}"
    orphan = Fit.objects.create(course=course, kind="rate", status=Fit.RUNNING, task_id=dead, attempts=1)
    other = Fit.objects.create(course=course, kind="rate", status=Fit.QUEUED, task_id=alive)
    assert services.fits_resume() == [orphan.pk]
    assert services.fits_background_wait(30)
    orphan.refresh_from_db()
    other.refresh_from_db()
    assert orphan.status == Fit.SUCCEEDED and orphan.attempts == 2, orphan.error
    assert other.status == Fit.QUEUED and other.task_id == alive
    other.delete()


# ------------------------------------------------------------------ item 9: one course cannot starve another


def test_the_runner_takes_courses_in_turn():
    pending = [Pending(1, course_id=10, order=0), Pending(2, course_id=10, order=1), Pending(3, course_id=20, order=2)]
    assert next_pending(pending, {}).fit_id == 1
    assert next_pending(pending[1:], {10: 0}).fit_id == 3  # course 20 has not had a turn yet
    assert next_pending([pending[1]], {10: 0, 20: 1}).fit_id == 2


def test_a_runner_with_one_courses_queue_full_still_serves_the_next_course_second():
    ran: list[int] = []
    hold = threading.Event()

    def run(fit_id: int) -> None:
        hold.wait(5)
        ran.append(fit_id)

    runner = FitRunner(run=run)
    runner.submit(1, 10)  # course 10's first fit starts at once and holds the runner ...
    time.sleep(0.1)
    for fit_id in (2, 3, 4):
        runner.submit(fit_id, 10)  # ... while course 10 queues three more
    runner.submit(5, 20)  # and then course 20 one
    hold.set()
    assert runner.wait_idle(10)
    assert ran == [1, 5, 2, 3, 4]


# ------------------------------------------------------------------ concurrency: the cap holds under a crowd


@pytest.mark.django_db(transaction=True)
def test_parallel_fit_requests_cannot_overrun_the_cap(postgresql, course, gated, settings):
    settings.TRACING_FITS_INLINE = False
    settings.TRACING_FITS_PER_COURSE = 2

    def request(_: int) -> str:
        try:
            services.fit_create(course=course, kind=gated)
            return "created"
        except Conflict:
            return "conflict"
        except ServiceError as error:
            return error.code

    outcomes = together(request)
    assert sorted(outcomes) == ["conflict"] * 6 + ["created"] * 2
    assert Fit.objects.filter(course=course).count() == 2
