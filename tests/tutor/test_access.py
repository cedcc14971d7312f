"""Who may sign in and practise what: login throttling, password rules, LTI login rate and refusals,
enrolment in courses and the tie between accounts and learners (issue 15, items 6, 7, 10, 13)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.password_validation import get_default_password_validators, validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.tutor.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


# --- sign-in throttling and passwords (item 10) -----------------------------------------------------------


def _sign_in(client: Client, path: str, password: str):
    return client.post(path, {"username": "grace", "password": password, "next": "/"})


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_forty_wrong_passwords_lock_the_right_one_out_until_the_cool_off(staff_user, path):
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(40):
        assert _sign_in(guesser, path, "not-the-password").status_code in (200, 429)
    locked = _sign_in(guesser, path, PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert locked["Retry-After"] == str(15 * 60)  # every 429 says when to come back
    assert "_auth_user_id" not in guesser.session

    # The lock holds the username at that address only: the real user elsewhere signs in.
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert _sign_in(elsewhere, path, PASSWORD).status_code == 302

    # After the cool-off the right password works again from the guesser's address too.
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _sign_in(guesser, path, PASSWORD).status_code == 302


def test_an_administrator_lifts_a_lockout_at_once(staff_user):
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(6):
        _sign_in(guesser, "/accounts/login/", "not-the-password")
    assert _sign_in(guesser, "/accounts/login/", PASSWORD).status_code == 429
    call_command("axes_reset_username", "grace")
    assert _sign_in(guesser, "/accounts/login/", PASSWORD).status_code == 302


def test_a_few_typos_do_not_lock_anyone_out(staff_user):
    person = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        assert _sign_in(person, "/accounts/login/", "typo").status_code == 200
    assert _sign_in(person, "/accounts/login/", PASSWORD).status_code == 302


def test_django_standard_password_validators_are_all_on(django_user_model):
    names = {type(validator).__name__ for validator in get_default_password_validators()}
    assert names == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }
    user = django_user_model(username="margaret.hamilton", email="margaret@example.org")
    for weak in ["demo", "password123", "4815162342108", "margaret.hamilton"]:
        with pytest.raises(ValidationError):
            validate_password(weak, user)
    validate_password("apollo guidance computer 1969", user)


# --- LTI login initiation and refusals (items 10 and 13) --------------------------------------------------

from tests.tutor.test_lti import CLIENT_ID, ISSUER, course, launch_form, lms, tool  # noqa: E402,F401  (fixtures)


def _login_initiation(client: Client):
    return client.post(
        "/lti/login/",
        {
            "iss": ISSUER,
            "client_id": CLIENT_ID,
            "login_hint": "student-1",
            "lti1p3_new_window": "1",
            "target_link_uri": "http://testserver/lti/launch/",
        },
    )


def test_lti_login_initiation_is_limited_per_address(tool, settings):
    settings.TUTOR_LTI_LOGIN_RATE = "5/min"
    crowd = Client(REMOTE_ADDR="203.0.113.9")
    answers = [_login_initiation(crowd).status_code for _ in range(8)]
    assert answers[:5] == [302] * 5 and answers[5:] == [429] * 3
    refused = _login_initiation(crowd)
    assert 1 <= int(refused["Retry-After"]) <= 60 and b"Too many course launches" in refused.content
    assert _login_initiation(Client(REMOTE_ADDR="198.51.100.7")).status_code == 302


def test_an_lti_login_nonce_lives_minutes_not_a_day(tool, settings, monkeypatch):
    from django.core.cache import caches

    stored: dict[str, float | None] = {}
    backend = caches["default"]
    original = backend.set

    def spy(key, value, timeout=None, **kwargs):
        stored[key] = timeout
        return original(key, value, timeout, **kwargs)

    monkeypatch.setattr(backend, "set", spy)
    assert _login_initiation(Client()).status_code == 302
    nonces = {key: timeout for key, timeout in stored.items() if "nonce" in key}
    assert nonces and set(nonces.values()) == {settings.TUTOR_LTI_STATE_LIFETIME} == {600}


def test_a_refused_launch_shows_a_plain_sentence_and_logs_the_reason(client, lms, tool, caplog):
    import jwt

    from tests.tutor.test_lti import STRANGER_PRIVATE, _resigned

    form = launch_form(client, lms)
    form["id_token"] = _resigned(form["id_token"], STRANGER_PRIVATE)
    with caplog.at_level("WARNING", logger="tutor.lti.views"):
        response = client.post("/lti/launch/", form)
    assert response.status_code == 403
    [logged] = [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]
    reason = re.search(r"\((launch: .+?)\) from", logged).group(1)
    assert "Signature verification failed" in reason  # pylti1p3's own words, kept for the operator
    page = response.content.decode()
    assert reason.removeprefix("launch: ") not in page and "id_token" not in page
    assert "could not be verified" in page
    reference = re.search(r"\[ref (\w+)\]", logged).group(1)
    assert f"<code>{reference}</code>" in page  # what a learner quotes to find the log line
    assert jwt  # the library that produced the reason is not named on the page either
    assert "jwt" not in page.lower() and "signature" not in page.lower()


# --- enrolment (item 6) -----------------------------------------------------------------------------------

from django.urls import reverse  # noqa: E402

from tests.tutor.api_support import course_with_curriculum  # noqa: E402
from tutor.actions import answers_record  # noqa: E402
from tutor.enrolments import enrolment_set  # noqa: E402
from tutor.models import Enrolment, Interaction, Learner  # noqa: E402

LEARNER_PAGES = ["learn", "learn_question", "learn_mastery"]


@pytest.fixture
def three_courses(db):
    """ "algebra" the user is enrolled in by staff, "geometry" nobody opened to them, "demo" open to all."""
    courses = {slug: course_with_curriculum(slug) for slug in ("algebra", "geometry", "demo")}
    courses["demo"].open_to_all = True
    courses["demo"].save(update_fields=["open_to_all"])
    return courses


def test_a_user_sees_and_practises_only_the_courses_enrolled_in_or_open(client, learner_user, three_courses):
    enrolment_set(course=three_courses["algebra"], user=learner_user)
    client.force_login(learner_user)
    home = client.get("/").content.decode()
    assert "/learn/algebra/" in home and "/learn/demo/" in home and "geometry" not in home.lower()
    for name in LEARNER_PAGES:
        assert client.get(reverse(name, args=["algebra"])).status_code == 200
        assert client.get(reverse(name, args=["demo"])).status_code == 200
        assert client.get(reverse(name, args=["geometry"])).status_code == 404
    answer = client.post(reverse("learn_answer", args=["geometry"]), {"token": "x", "response": "4"})
    assert answer.status_code == 404
    assert not Learner.objects.filter(course=three_courses["geometry"]).exists()
    assert not Enrolment.objects.filter(course=three_courses["geometry"]).exists()
    # The open course enrolled the user on the first visit, as a learner of their own.
    opened = Enrolment.objects.get(course=three_courses["demo"], user=learner_user)
    assert opened.source == Enrolment.OPEN and opened.learner.user == learner_user


def test_a_course_one_may_not_practise_looks_like_no_course(client, learner_user, three_courses):
    client.force_login(learner_user)
    hidden = client.get(reverse("learn", args=["geometry"]))
    missing = client.get(reverse("learn", args=["no-such-course"]))
    assert hidden.status_code == missing.status_code == 404


def test_staff_keep_the_dashboard_but_practise_only_where_enrolled(client, staff_user, three_courses):
    client.force_login(staff_user)
    assert client.get(reverse("dashboard_course", args=["geometry"])).status_code == 200
    assert client.get(reverse("learn", args=["geometry"])).status_code == 404
    assert not Learner.objects.filter(course=three_courses["geometry"]).exists()


def test_an_lti_learner_reaches_only_the_linked_course(client, lms, tool, course):
    other = course_with_curriculum("decimals")
    third = course_with_curriculum("percent")
    assert client.post("/lti/launch/", launch_form(client, lms)).status_code == 302
    assert client.get("/learn/fractions/").status_code == 200
    for slug in ("decimals", "percent"):
        for name in LEARNER_PAGES:
            assert client.get(reverse(name, args=[slug])).status_code == 404
    assert not Learner.objects.filter(course__in=[other, third]).exists()
    home = client.get("/").content.decode()
    assert "/learn/fractions/" in home and "decimals" not in home and "percent" not in home
    enrolment = Enrolment.objects.get()
    assert (enrolment.course, enrolment.source, enrolment.learner.external_id) == (course, "lti", "student-1")


# --- a username never picks a learner (item 7) ------------------------------------------------------------


def test_a_local_username_equal_to_an_imported_learner_does_not_take_it_over(
    client, lms, tool, course, django_user_model, fast_passwords
):
    history = [
        {
            "id": f"file-{step}",
            "learner": "alice",
            "item": "q2",
            "correct": 1,
            "timestamp": f"2026-11-20T10:0{step}:00Z",
        }
        for step in range(6)
    ]
    answers_record(course=course, rows=history)
    imported = Learner.objects.get(course=course, external_id="alice")

    local = django_user_model.objects.create_user(username="alice", password=PASSWORD)
    enrolment_set(course=course, user=local)  # staff enrol the account, without naming a learner
    browser = Client()
    browser.force_login(local)
    page = browser.get("/learn/fractions/mastery/")
    assert page.status_code == 200
    mine = Learner.objects.get(course=course, user=local)
    assert mine != imported and mine.external_id == f"user:{local.pk}"
    assert not Interaction.objects.filter(learner=mine).exists()
    imported.refresh_from_db()
    assert imported.user is None  # still nobody's

    # The real alice arrives from her LMS: the launch works and she finds her history.
    assert client.post("/lti/launch/", launch_form(client, lms, user="alice")).status_code == 302
    imported.refresh_from_db()
    assert imported.user is not None and imported.user != local
    assert str(imported.user.pk) == client.session["_auth_user_id"]
    assert client.get("/learn/fractions/").status_code == 200
    assert Enrolment.objects.get(course=course, user=imported.user).learner == imported


def test_an_account_keeps_its_learner_when_a_file_later_uses_its_id(client, learner_user, three_courses):
    demo = three_courses["demo"]
    client.force_login(learner_user)
    answers_record(
        course=demo,
        rows=[
            {
                "id": "f1",
                "learner": f"user:{learner_user.pk}",
                "item": "q1",
                "correct": 1,
                "timestamp": "2026-11-20T10:00:00Z",
            }
        ],
    )
    client.get("/learn/demo/")
    mine = Enrolment.objects.get(course=demo, user=learner_user).learner
    assert mine.external_id.startswith(f"user:{learner_user.pk}-")  # the file's learner stays the file's
    assert Learner.objects.get(course=demo, external_id=f"user:{learner_user.pk}").user is None


def test_staff_enrol_accounts_in_the_admin(client, django_user_model, fast_passwords, three_courses):
    root = django_user_model.objects.create_superuser("root", "root@example.org", PASSWORD)
    pupil = django_user_model.objects.create_user("pupil")
    client.force_login(root)
    geometry, algebra = three_courses["geometry"], three_courses["algebra"]

    # An action on the users list, with the course chosen beside it.
    client.post(
        "/admin/auth/user/", {"action": "enrol_in_course", "_selected_action": [pupil.pk], "course": geometry.pk}
    )
    assert Enrolment.objects.get(course=geometry, user=pupil).source == Enrolment.STAFF

    # The enrolment form ties the account to a named learner (one imported from a file, say).
    imported = Learner.objects.create(course=algebra, external_id="p-7")
    added = client.post("/admin/tutor/enrolment/add/", {"course": algebra.pk, "user": pupil.pk, "learner": imported.pk})
    assert added.status_code == 302
    imported.refresh_from_db()
    assert imported.user == pupil and Enrolment.objects.get(course=algebra, user=pupil).learner == imported

    # A learner tied to another account is refused on the form, and nothing changes.
    other = django_user_model.objects.create_user("other")
    refused = client.post(
        "/admin/tutor/enrolment/add/", {"course": algebra.pk, "user": other.pk, "learner": imported.pk}
    )
    assert refused.status_code == 200 and b"tied to another account" in refused.content
    assert not Enrolment.objects.filter(user=other).exists()

    # Ending the enrolment unties the learner; its answers stay.
    client.post(
        f"/admin/tutor/enrolment/{Enrolment.objects.get(course=algebra, user=pupil).pk}/delete/", {"post": "yes"}
    )
    imported.refresh_from_db()
    assert imported.user is None and not Enrolment.objects.filter(course=algebra, user=pupil).exists()

    client.post("/admin/curriculum/course/", {"action": "open_to_all_signed_in", "_selected_action": [geometry.pk]})
    geometry.refresh_from_db()
    assert geometry.open_to_all


# --- enrolment through the API (item 6) -------------------------------------------------------------------

from tests.tutor.api_support import client_for, key_for  # noqa: E402


def test_the_api_enrols_an_account_as_a_learner(client, django_user_model, three_courses):
    geometry = three_courses["geometry"]
    api = client_for(key_for(geometry))
    pupil = django_user_model.objects.create_user("pupil")
    url = "/api/v1/courses/geometry/learners/lms-77/enrolment"

    made = api.put(url, {"user": "pupil"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json() | {"created_at": None} == {
        "course": "geometry",
        "learner": "lms-77",
        "user": "pupil",
        "source": "api",
        "created_at": None,
    }
    assert api.put(url, {"user": "pupil"}, format="json").status_code == 200  # idempotent
    assert api.get(url).json()["user"] == "pupil"

    client.force_login(pupil)
    assert client.get("/learn/geometry/").status_code == 200
    assert Learner.objects.get(course=geometry, user=pupil).external_id == "lms-77"

    assert api.delete(url).status_code == 204
    assert client.get("/learn/geometry/").status_code == 404
    assert Learner.objects.get(course=geometry, external_id="lms-77").user is None
    assert api.get(url).status_code == 404


def test_the_api_refuses_bad_enrolments_with_a_reason_and_writes_nothing(django_user_model, three_courses):
    geometry = three_courses["geometry"]
    api = client_for(key_for(geometry))
    owner = django_user_model.objects.create_user("owner")
    django_user_model.objects.create_user("intruder")
    assert (
        api.put("/api/v1/courses/geometry/learners/taken/enrolment", {"user": "owner"}, format="json").status_code
        == 201
    )

    cases = [
        ("/api/v1/courses/geometry/learners/new-1/enrolment", {"user": "nobody"}, 400, "unknown_user", "user"),
        ("/api/v1/courses/geometry/learners/new-2/enrolment", {}, 400, "required", "user"),
        ("/api/v1/courses/geometry/learners/new-3/enrolment", {"user": ["owner"]}, 400, "invalid", "user"),
        ("/api/v1/courses/geometry/learners/new-4/enrolment", {"user": "x" * 151}, 400, "max_length", "user"),
        (f"/api/v1/courses/geometry/learners/{'l' * 201}/enrolment", {"user": "owner"}, 400, "max_length", "learner"),
        ("/api/v1/courses/geometry/learners/taken/enrolment", {"user": "intruder"}, 409, "learner_taken", "learner"),
        ("/api/v1/courses/algebra/learners/new-5/enrolment", {"user": "owner"}, 404, "not_found", "course"),
    ]
    for url, body, status, code, field in cases:
        response = api.put(url, body, format="json")
        assert response.status_code == status, (url, body, response.content)
        assert response.json()["code"] == code and response.json().get("field") == field, response.json()
    assert list(Learner.objects.filter(course=geometry).values_list("external_id", flat=True)) == ["taken"]
    assert Enrolment.objects.get(course=geometry).user == owner
    assert not Learner.objects.filter(course=three_courses["algebra"]).exists()


# --- two requests at once (PostgreSQL) --------------------------------------------------------------------

from tests.threads import THREADS, together  # noqa: E402


def _slowed(monkeypatch, owner, name: str, seconds: float = 0.05) -> None:
    """Widen a race window: ``owner.name`` waits a little before doing its work, so that concurrent
    requests meet inside it (without this they rarely overlap in a test, locks or not)."""
    import time

    original = getattr(owner, name)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)


@pytest.mark.django_db(transaction=True)
def test_first_visits_at_once_make_one_enrolment_and_one_learner(postgresql, django_user_model, monkeypatch):
    from tutor import enrolments

    course = course_with_curriculum("open-course")
    user = django_user_model.objects.create_user("tabs")
    enrolment_set(course=course, user=user)  # enrolled by staff; the learner is made on the first visit
    # A file already used the id the account's learner would get: each visit must not make its own.
    Learner.objects.create(course=course, external_id=f"user:{user.pk}")
    _slowed(monkeypatch, enrolments, "_learner_new")

    def visit(number: int) -> int:
        browser = Client()
        browser.force_login(user)
        return browser.get(reverse(LEARNER_PAGES[number % 3], args=["open-course"])).status_code

    assert together(visit) == [200] * THREADS
    assert Enrolment.objects.filter(course=course, user=user).count() == 1
    [learner] = Learner.objects.filter(course=course, user=user)
    assert Enrolment.objects.get(course=course).learner == learner
    assert Learner.objects.filter(course=course).count() == 2  # the file's and the account's


@pytest.mark.django_db(transaction=True)
def test_api_enrolments_at_once_give_a_learner_to_one_account(postgresql, django_user_model, monkeypatch):
    course = course_with_curriculum("contested")
    _slowed(monkeypatch, Enrolment.objects, "get_or_create")
    raw_key = key_for(course)
    for number in range(THREADS):
        django_user_model.objects.create_user(f"pupil-{number}")
    clients = [client_for(raw_key) for _ in range(THREADS)]

    for round_ in range(4):  # a few rounds: the requests must overlap in the database to test anything
        learner_id = f"shared-{round_}"
        Learner.objects.create(course=course, external_id=learner_id)  # known already (an import, say)

        def enrol(number: int) -> int:
            # Half the threads name one account, the others each their own: one account gets the learner.
            user = "pupil-0" if number % 2 == 0 else f"pupil-{number}"
            return (
                clients[number]
                .put(f"/api/v1/courses/contested/learners/{learner_id}/enrolment", {"user": user}, format="json")
                .status_code
            )

        statuses = together(enrol)
        assert all(isinstance(status, int) for status in statuses), statuses
        learner = Learner.objects.get(course=course, external_id=learner_id)
        winner = Enrolment.objects.select_related("user").get(course=course, learner=learner)
        assert learner.user == winner.user
        won = [
            number
            for number in range(THREADS)
            if (number % 2 == 0 and winner.user.username == "pupil-0") or winner.user.username == f"pupil-{number}"
        ]
        assert all(statuses[number] in (200, 201) for number in won), statuses
        assert all(statuses[number] == 409 for number in range(THREADS) if number not in won), statuses
    assert Learner.objects.filter(course=course).count() == 4
