"""Safe by default: deployment checks, CSRF on every form, keys stored hashed, courses and learners
isolated on every API route (found from the URLconf, so a new route cannot skip the check), bodies bounded."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tutor.keys import api_key_create
from tutor.models import ApiKey

REPO = Path(__file__).resolve().parents[2]


def _production_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.update(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            **extra,
        }
    )
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_check_deploy_is_clean_in_production_settings():
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env(DJANGO_HSTS_SECONDS="31536000"))
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "no issues" in output, output


def test_without_the_hsts_flag_the_only_deploy_warning_is_hsts():
    done = _manage("check", "--deploy", env=_production_env())
    warnings = sorted(
        {
            word.strip("():")
            for word in (done.stdout + done.stderr).split()
            if word.startswith("(") and "." in word and word.rstrip(")").rsplit(".", 1)[-1][:1] in "WE"
        }
    )
    assert warnings == ["security.W004"], done.stdout + done.stderr


def test_production_settings_are_strict_and_need_a_secret_key():
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'session': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, "
        "'httponly': s.SESSION_COOKIE_HTTPONLY, 'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS, "
        "'frame': s.X_FRAME_OPTIONS, 'body': s.DATA_UPLOAD_MAX_MEMORY_SIZE}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=_production_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values == {
        **values,
        "debug": False,
        "session": True,
        "csrf": True,
        "httponly": True,
        "redirect": True,
        "hsts": 0,
        "frame": "DENY",
    }
    assert 0 < values["body"] <= 64 * 1024 * 1024

    without_key = _production_env()
    del without_key["DJANGO_SECRET_KEY"]
    refused = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=without_key,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY" in refused.stderr


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    found: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found.extend(_routes(entry, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found.append(prefix + str(entry.pattern))
    return found


def _fill(route: str, **values: str) -> str:
    path = route
    for name, value in values.items():
        for converter in ("", "str:", "slug:", "int:"):
            path = path.replace(f"<{converter}{name}>", value)
    return "/" + path


WEB_FORMS = ["accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/"]


@pytest.mark.django_db
def test_every_page_refuses_a_post_without_the_csrf_token(staff_user, demo_course):
    web = [
        route
        for route in _routes(get_resolver())
        if not route.startswith(("api/", "lti/", "admin/", "health/")) and "^" not in route
    ]
    assert "learn/<slug:slug>/answer/" in web, "the answer form's route moved: update this test"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    refused = {}
    for route in sorted(set(web + WEB_FORMS)):
        path = _fill(route, slug=demo_course.slug, fit_id="1", learner_id="1", class_id="1")
        refused[route] = strict.post(path, {"item": "x", "answer": "1"}).status_code
    assert set(refused.values()) == {403}, refused

    lenient = Client()
    lenient.force_login(staff_user)
    answered = lenient.post(_fill("learn/<slug:slug>/answer/", slug=demo_course.slug), {"item": "nope", "answer": "1"})
    assert answered.status_code != 403, "the same post with CSRF checks off is not refused for CSRF"


@pytest.mark.django_db
def test_the_api_refuses_a_session_post_without_the_csrf_token(staff_user):
    course = course_with_curriculum("csrf")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    response = strict.post(
        f"/api/v1/courses/{course.slug}/interactions",
        json.dumps({"learner": "u1", "item": "q1", "correct": 1}),
        content_type="application/json",
    )
    assert response.status_code == 403 and "CSRF" in response.json()["message"]


@pytest.mark.django_db
def test_api_keys_are_stored_only_as_digests():
    course = course_with_curriculum("keys")
    key, raw = api_key_create(name="lms", course=course)
    secret = raw.rsplit("_", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiKey._meta.db_table}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert secret not in stored and raw not in stored
    assert client_for(raw).get(f"/api/v1/courses/{course.slug}/learners").status_code == 200
    assert (
        client_for(raw[:-1] + ("A" if raw[-1] != "A" else "B"))
        .get(f"/api/v1/courses/{course.slug}/learners")
        .status_code
        == 401
    )


def _course_routes() -> list[str]:
    return [route for route in _routes(get_resolver()) if route.startswith("api/v1/courses/<str:course>/")]


@pytest.mark.django_db
def test_every_course_route_hides_other_courses_and_their_learners():
    mine, theirs = course_with_curriculum("mine"), course_with_curriculum("theirs")
    my_key, their_key = key_for(mine), key_for(theirs)
    for key, course, correct in ((my_key, mine, 1), (their_key, theirs, 0)):
        stored = client_for(key).post(
            f"/api/v1/courses/{course.slug}/interactions",
            {"id": f"{course.slug}-1", "learner": "u1", "item": "q1", "correct": correct},
            format="json",
        )
        assert stored.status_code == 201, stored.content
    their_fit = client_for(their_key).post(f"/api/v1/courses/{theirs.slug}/fits", {"model": "rate"}, format="json")
    assert their_fit.status_code == 202, their_fit.content

    routes = _course_routes()
    assert len(routes) >= 10, routes
    me = client_for(my_key)
    leaks = []
    for route in routes:
        path = _fill(route, course=theirs.slug, learner="u1", fit=str(their_fit.json()["id"]))
        for method in ("get", "post"):
            response = getattr(me, method)(
                path, {"learner": "u1", "item": "q1", "correct": 1, "model": "rate", "items": ["q1"]}, format="json"
            )
            if response.status_code not in (404, 405):
                leaks.append((method, route, response.status_code))
            elif response.status_code == 404:
                assert b"theirs" not in response.content.replace(b"'theirs' not found", b""), response.content
    assert not leaks, leaks

    # The same learner id in my course sees only my course's answers and fits.
    listed = me.get(f"/api/v1/courses/{mine.slug}/interactions", {"learner": "u1"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["id"] for row in rows] == ["mine-1"]
    assert me.get(f"/api/v1/courses/{mine.slug}/fits/{their_fit.json()['id']}").status_code == 404
    # A learner id known only in the other course is a new learner here: the prior, nothing of theirs
    # (issue 21 made next answer learners with no answers yet; it was a 404).
    client_for(their_key).post(
        f"/api/v1/courses/{theirs.slug}/interactions",
        {"id": "theirs-2", "learner": "their-only", "item": "q2", "correct": 0},
        format="json",
    )
    only_theirs = me.get(f"/api/v1/courses/{mine.slug}/learners/their-only/next")
    fresh = me.get(f"/api/v1/courses/{mine.slug}/learners/nobody/next")
    assert only_theirs.status_code == fresh.status_code == 200
    assert {**only_theirs.json(), "learner": None} == {**fresh.json(), "learner": None}
    assert not mine.learners.filter(external_id__in=["their-only", "nobody"]).exists()


@pytest.mark.django_db
@override_settings(TUTOR_API_MAX_BODY_BYTES=4096)
def test_request_bodies_are_bounded():
    course = course_with_curriculum("bounded")
    api = client_for(key_for(course))
    rows = [{"id": f"r{number}", "learner": "u1", "item": "q1", "correct": 1} for number in range(200)]
    too_big = api.post(f"/api/v1/courses/{course.slug}/interactions", rows, format="json")
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
    assert course.interactions.count() == 0
    assert api.post(f"/api/v1/courses/{course.slug}/interactions", rows[:10], format="json").status_code == 201


@pytest.mark.django_db
def test_form_posts_are_bounded(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    browser = Client()
    assert browser.post("/accounts/login/", {"username": "u", "password": "x" * 4096}).status_code == 400
    assert browser.post("/accounts/login/", {f"field{n}": "1" for n in range(1200)}).status_code == 400
    assert browser.post("/accounts/login/", {"username": "u", "password": "x"}).status_code == 200


@pytest.mark.django_db
def test_the_health_probe_names_no_secrets(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://user:hunter2@127.0.0.1:1/0"
    response = Client().get("/health/")
    assert response.status_code == 200 and response.json()["status"] in ("ok", "degraded")
    assert b"hunter2" not in response.content and b"127.0.0.1" not in response.content
