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
    assert names == {"UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                     "NumericPasswordValidator"}
    user = django_user_model(username="margaret.hamilton", email="margaret@example.org")
    for weak in ["demo", "password123", "4815162342108", "margaret.hamilton"]:
        with pytest.raises(ValidationError):
            validate_password(weak, user)
    validate_password("apollo guidance computer 1969", user)


# --- LTI login initiation and refusals (items 10 and 13) --------------------------------------------------

from tests.tutor.test_lti import CLIENT_ID, ISSUER, launch_form, lms, tool, course  # noqa: E402,F401  (fixtures)


def _login_initiation(client: Client):
    return client.post("/lti/login/", {"iss": ISSUER, "client_id": CLIENT_ID, "login_hint": "student-1",
                                       "lti1p3_new_window": "1",
                                       "target_link_uri": "http://testserver/lti/launch/"})


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
