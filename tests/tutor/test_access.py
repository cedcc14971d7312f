"""Who may sign in and practise what: login throttling, password rules, LTI login rate and refusals,
enrolment in courses and the tie between accounts and learners (issue 15, items 6, 7, 10, 13)."""

from __future__ import annotations

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
