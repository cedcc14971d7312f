"""Erasing a learner (API, dashboard, management command) leaves nothing of them in any table, is all or
nothing, and marks the fits trained on their answers; exporting a learner gives everything held about them."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import models
from django.test import Client

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tests.tutor.test_lti import course, launch_form, lms, tool  # noqa: F401 - fixtures of the LTI set-up
from tracing.models import Fit, LearnerTrace, Mastery
from tracing.services import fit_run
from tutor import privacy
from tutor.actions import answers_record
from tutor.enrolments import enrolment_set
from tutor.lti.models import LtiGradeTarget
from tutor.models import Enrolment, Erasure, Interaction, Learner
from tutor.privacy import learner_digest, learner_erase

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ITEMS = ["q1", "q2", "q3", "q17"]
LEARNER_URL = "/api/v1/courses/fractions/learners/student-1"


def answers_for(course, learner: str, count: int, *, seed: int = 0, prefix: str = "") -> None:
    generator = random.Random(seed)
    answers_record(
        course=course,
        rows=[
            {
                "id": f"{prefix or learner}-{step}",
                "learner": learner,
                "item": generator.choice(ITEMS),
                "correct": int(generator.random() < 0.6),
                "timestamp": (START + timedelta(minutes=step)).isoformat(),
                "response": f"{learner} wrote {step}",
                "response_time": 3.5,
            }
            for step in range(count)
        ],
    )


def fit_now(course) -> Fit:
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={}).pk)
    assert fit.status == Fit.SUCCEEDED, fit.error
    return fit


def references(*, learner_pks: set[int], user_pks: set[int], texts: set[str]) -> list[str]:
    """Every row of every model of every installed app that points at these learners or accounts (a
    foreign key), or holds one of these texts (in a text or JSON column, or in a session's data)."""
    found = []
    user_model = get_user_model()
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.concrete_fields:
            column = field.attname
            if field.is_relation and field.related_model in (Learner, user_model):
                wanted = learner_pks if field.related_model is Learner else user_pks
                hits = model._default_manager.filter(**{f"{column}__in": wanted}).count() if wanted else 0
            elif isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                hits = sum(
                    1
                    for value in model._default_manager.values_list(column, flat=True)
                    if value is not None
                    and any(text in (value if isinstance(value, str) else json.dumps(value)) for text in texts)
                )
            elif field.primary_key and model in (Learner, user_model):
                hits = model._default_manager.filter(pk__in=learner_pks if model is Learner else user_pks).count()
            else:
                continue
            if hits:
                found.append(f"{model._meta.label}.{column}: {hits}")
    sessions = sum(
        str(session.get_decoded().get("_auth_user_id")) in {str(pk) for pk in user_pks}
        for session in Session.objects.all()
    )
    if sessions:
        found.append(f"sessions.Session (decoded): {sessions}")
    return found


@pytest.fixture
def launched(client, lms, tool, course, settings, tmp_path, fast_passwords):  # noqa: F811
    """student-1 launched from the LMS (account, LTI identity, enrolment, grade target), answered, was fitted,
    failed a sign-in once, and appears in the admin's history; sim-0..3 practise beside them."""
    settings.ARTIFACT_ROOT = tmp_path
    assert client.post("/lti/launch/", launch_form(client, lms)).status_code == 302
    learner = Learner.objects.select_related("user").get(course=course, external_id="student-1")
    answers_for(course, "student-1", 20)
    for number in range(4):
        answers_for(course, f"sim-{number}", 15, seed=number + 1)
    fit = fit_now(course)
    Client().post("/accounts/login/", {"username": learner.user.username, "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    LogEntry.objects.create(
        user=get_user_model().objects.create_user("editor", is_staff=True),
        content_type=ContentType.objects.get_for_model(Learner),
        object_id=str(learner.pk),
        object_repr=str(learner),
        action_flag=CHANGE,
    )
    return learner, fit


def test_erasure_through_the_api_leaves_nothing_of_the_learner_in_any_table(launched, course):  # noqa: F811
    learner, fit = launched
    user = learner.user
    texts = {"student-1", user.username, "ada@example.com", "Lovelace"}
    before = references(learner_pks={learner.pk}, user_pks={user.pk}, texts=texts)
    for expected in (
        "tutor.Interaction.learner_id",
        "tracing.Mastery.learner_id",
        "tracing.LearnerTrace.learner_id",
        "tutor_lti.LtiGradeTarget.learner_id",
        "tutor.Enrolment.user_id",
        "lti_tool.LtiUser.auth_user_id",
        "axes.AccessAttempt.username",
        "axes.AccessLog.username",
        "admin.LogEntry.object_repr",
        "sessions.Session (decoded)",
    ):
        assert any(line.startswith(expected) for line in before), (expected, "; ".join(before))
    kept = Interaction.objects.exclude(learner=learner).count()

    api = client_for(key_for(course, name="DPO"))
    response = api.delete(f"{LEARNER_URL}?confirm=student-1")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["account_deleted"] is True and body["via"] == "api" and body["actor"].endswith("(DPO)")
    assert body["counts"]["tutor.Interaction"] == 20 and body["counts"]["tutor.Learner"] == 1
    assert body["counts"]["tutor_lti.LtiGradeTarget"] == 1 and body["counts"]["auth.User"] == 1
    assert body["learner_digest"] == learner_digest(course_slug="fractions", external_id="student-1")
    assert references(learner_pks={learner.pk}, user_pks={user.pk}, texts=texts) == []
    assert Interaction.objects.count() == kept and Learner.objects.filter(course=course).count() == 4

    marked = api.get(f"/api/v1/courses/fractions/fits/{fit.pk}").json()
    assert marked["erased_learners"] == 1 and marked["erased_at"] is not None
    refit = fit_now(course)
    assert refit.active and refit.erased_learners == 0
    assert api.get("/api/v1/courses/fractions/fits").json()["results"][0]["erased_learners"] == 0
    assert api.get(f"{LEARNER_URL}/mastery").status_code == 404


def test_an_erasure_needs_the_learners_id_again_and_a_key_of_the_course(launched, course):  # noqa: F811
    api = client_for(key_for(course))
    assert api.delete(LEARNER_URL).json()["code"] == "confirmation_required"
    assert api.delete(f"{LEARNER_URL}?confirm=student-2").status_code == 400
    other = course_with_curriculum("other")
    assert client_for(key_for(other)).delete(f"{LEARNER_URL}?confirm=student-1").status_code == 404
    assert api.delete("/api/v1/courses/fractions/learners/nobody?confirm=nobody").status_code == 404
    assert Interaction.objects.filter(learner__external_id="student-1").count() == 20 and not Erasure.objects.exists()


def test_an_erasure_is_all_or_nothing(launched, course, monkeypatch):  # noqa: F811
    learner, _ = launched

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(privacy, "_fits_mark", broken)
    counts = {
        model: model.objects.count()
        for model in (Interaction, Mastery, LearnerTrace, LtiGradeTarget, Enrolment, Learner, get_user_model())
    }
    with pytest.raises(RuntimeError):
        learner_erase(course=course, external_id="student-1", confirm="student-1")
    assert {model: model.objects.count() for model in counts} == counts and not Erasure.objects.exists()


def test_an_account_with_another_course_stays_and_keeps_that_course(db, django_user_model):
    first, second = course_with_curriculum("first"), course_with_curriculum("second")
    user = django_user_model.objects.create_user("bea")
    for each in (first, second):
        learner = Learner.objects.create(course=each, external_id="bea", user=user)
        enrolment_set(course=each, user=user, learner=learner, source=Enrolment.STAFF)
        answers_for(each, "bea", 3)
    erasure = learner_erase(
        course=first,
        external_id="bea",
        by=django_user_model.objects.create_user("officer", is_staff=True),
        via=Erasure.DASHBOARD,
        confirm="bea",
    )
    assert not erasure.account_deleted and erasure.actor == "user officer"
    assert django_user_model.objects.filter(pk=user.pk).exists()
    assert list(Enrolment.objects.filter(user=user).values_list("course__slug", flat=True)) == ["second"]
    assert Interaction.objects.filter(course=second).count() == 3 and not Interaction.objects.filter(course=first)


def test_a_learner_without_an_active_fit_marks_nothing_and_staff_accounts_stay(db, django_user_model):
    course = course_with_curriculum("plain")
    staff = django_user_model.objects.create_user("teacher", is_staff=True)
    Learner.objects.create(course=course, external_id="teacher", user=staff)
    answers_for(course, "teacher", 2)
    erasure = learner_erase(course=course, external_id="teacher", confirm="teacher")
    assert not erasure.account_deleted and django_user_model.objects.filter(pk=staff.pk).exists()
    assert "tracing.Fit (marked)" not in erasure.counts and erasure.actor == "management command"


def test_the_access_export_holds_everything_about_the_learner(launched, course):  # noqa: F811
    learner, fit = launched
    api = client_for(key_for(course))
    response = api.get(f"{LEARNER_URL}/export")
    assert response.status_code == 200, response.content
    document = response.json()
    assert document["course"] == "fractions" and document["learner"] == "student-1"
    assert len(document["interactions"]) == 20 and document["interactions"][0]["response"] == "student-1 wrote 0"
    assert {row["skill"] for row in document["mastery"]} == {"count", "add", "frac-add"}
    assert [trace["fit"] for trace in document["traces"]] == [fit.pk]
    assert document["accounts"][0]["email"] == "ada@example.com"
    assert document["enrolments"] == [
        {
            "course": "fractions",
            "learner": "student-1",
            "source": "lti",
            "created_at": document["enrolments"][0]["created_at"],
        }
    ]
    assert document["lti"]["users"][0]["name"] == "Ada Lovelace"
    assert document["lti"]["grade_targets"][0]["user_sub"] == "student-1"
    assert api.get("/api/v1/courses/fractions/learners/nobody/export").status_code == 404


def test_the_management_commands_export_and_erase(launched, course, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "student-1.json"
    call_command("learner_export", "--course", "fractions", "--learner", "student-1", "--out", str(out))
    assert len(json.loads(out.read_text())["interactions"]) == 20
    call_command("learner_erase", "--course", "fractions", "--learner", "student-1", "--yes", "--by", "ticket 42")
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["tutor.Interaction"] == 20 and summary["account_deleted"] is True
    erasure = Erasure.objects.get()
    assert erasure.via == Erasure.COMMAND and erasure.actor == "management command (ticket 42)"
    assert not Learner.objects.filter(course=course, external_id="student-1").exists()


def test_the_dashboard_reviews_confirms_and_erases(launched, course, client, django_user_model):  # noqa: F811
    learner, fit = launched
    staff = django_user_model.objects.create_user("grace", is_staff=True)
    client.force_login(staff)
    page = client.get("/dashboard/fractions/data/")
    assert page.status_code == 200 and b"/dashboard/fractions/exports/interactions.csv" in page.content
    review = client.get("/dashboard/fractions/erase/", {"learner": "student-1"})
    assert review.status_code == 200 and b"20 answers" in review.content and b"and the account itself" in review.content
    export = client.get("/dashboard/fractions/learner-export/", {"learner": "student-1"})
    assert export.status_code == 200 and len(json.loads(export.content)["interactions"]) == 20
    refused = client.post("/dashboard/fractions/erase/", {"learner": "student-1", "confirm": "student"})
    assert refused.status_code == 400 and Learner.objects.filter(pk=learner.pk).exists()
    done = client.post("/dashboard/fractions/erase/", {"learner": "student-1", "confirm": "student-1"})
    erasure = Erasure.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/dashboard/fractions/data/?erased={erasure.pk}"
    assert erasure.erased_by == staff and erasure.via == Erasure.DASHBOARD
    log = client.get(done["Location"])
    assert b"erased" in log.content and erasure.learner_digest[:10].encode() in log.content
    fits = client.get("/dashboard/fractions/fits/")
    assert b"trained on 1 erased learner" in fits.content
    assert client.get("/dashboard/fractions/erase/", {"learner": "student-1"})["Location"].endswith("?missing=1")


def test_the_data_pages_are_for_staff(launched, client, django_user_model):  # noqa: F811
    client.force_login(django_user_model.objects.create_user("pupil"))
    for url in (
        "/dashboard/fractions/data/",
        "/dashboard/fractions/exports/interactions.csv",
        "/dashboard/fractions/erase/?learner=student-1",
        "/dashboard/fractions/learner-export/?learner=student-1",
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post("/dashboard/fractions/erase/", {"learner": "student-1", "confirm": "student-1"}).status_code == 403
    )
    assert Learner.objects.filter(external_id="student-1").exists()


def test_a_saved_model_that_names_its_learners_forgets_the_erased_one(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """hbkt keeps per-learner parameters and names their learners in its artifact: the erasure rewrites
    it under a new name, points the fit there and deletes the original, and the model still serves."""
    from tracing.artifacts import artifact_storage
    from tracing.services import course_model

    settings.ARTIFACT_ROOT = tmp_path
    course = course_with_curriculum("named")
    for number in range(6):
        answers_for(course, f"pupil-{number}", 12, seed=number)
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="hbkt", params={"steps": 20}).pk)
    assert fit.status == Fit.SUCCEEDED, fit.error
    original = fit.artifact
    assert b"pupil-3" in _artifact_meta(artifact_storage(), original)
    with django_capture_on_commit_callbacks(execute=True):
        erasure = learner_erase(course=course, external_id="pupil-3", confirm="pupil-3")
    fit.refresh_from_db()
    assert erasure.counts["tracing.Fit (artifact rewritten)"] == 1 and fit.artifact != original
    assert not artifact_storage().exists(original)
    meta = _artifact_meta(artifact_storage(), fit.artifact)
    assert b"pupil-3" not in meta and f"erased:{erasure.learner_digest[:16]}".encode() in meta
    assert b"pupil-2" in meta
    model = course_model(course)
    assert model.fit.artifact == fit.artifact and "pupil-3" not in model.estimator.learner_index
    answers_for(course, "pupil-2", 2, prefix="later")  # the rewritten model takes answers as before


def _artifact_meta(storage, name: str) -> bytes:
    import io

    import numpy as np

    with storage.open(name, "rb") as handle, np.load(io.BytesIO(handle.read())) as archive:
        return archive["meta"].tobytes()


def test_the_admin_lists_erasures_read_only(launched, course, admin_client):  # noqa: F811
    learner_erase(course=course, external_id="student-1", confirm="student-1")
    page = admin_client.get("/admin/tutor/erasure/")
    assert page.status_code == 200 and b"management command" in page.content
    erasure = Erasure.objects.get()
    assert admin_client.post(f"/admin/tutor/erasure/{erasure.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tutor/erasure/add/").status_code == 403


def test_the_admin_cannot_delete_a_learner_around_the_erasure(launched, course, admin_client):  # noqa: F811
    """A learner deleted row by row in the admin would leave no audit record, keep the account and leave the
    fits unmarked: the admin refuses, and points to the erasure."""
    learner = Learner.objects.get(course=course, external_id="student-1")
    response = admin_client.post(f"/admin/tutor/learner/{learner.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403 and Learner.objects.filter(pk=learner.pk).exists()
    bulk = admin_client.post(
        "/admin/tutor/learner/", {"action": "delete_selected", "_selected_action": [learner.pk], "post": "yes"}
    )
    assert Learner.objects.filter(pk=learner.pk).exists() and bulk.status_code in (200, 302, 403)
