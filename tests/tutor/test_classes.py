"""Classes without an LMS: staff make a group in the admin, a non-staff teacher granted it sees its
learners only; and the teacher's flags and role rules, which are plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tutor.lti.models import ClassMember, CourseClass, TeachingGrant
from tutor.lti.roles import launch_role
from tutor.models import Learner
from tutor.web.learners import FlagRules, learner_flags

VOCABULARY = "http://purl.imsglobal.org/vocab/lis/v2/"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RULES = FlagRules(no_progress_answers=3, quiet_days=7, stuck_answers=2)


@pytest.mark.parametrize(
    "roles, role",
    [
        ([VOCABULARY + "membership#Learner"], "learner"),
        ([VOCABULARY + "membership#Instructor"], "instructor"),
        (["Instructor"], "instructor"),
        ([VOCABULARY + "membership/Instructor#TeachingAssistant"], "ta"),
        ([VOCABULARY + "membership#Administrator"], "administrator"),
        ([VOCABULARY + "institution/person#Administrator"], "administrator"),
        ([VOCABULARY + "system/person#Administrator"], "administrator"),
        ([VOCABULARY + "institution/person#Administrator", VOCABULARY + "membership#Learner"], "learner"),
        (
            [
                VOCABULARY + "institution/person#Administrator",
                VOCABULARY + "membership#Instructor",
                VOCABULARY + "system/person#Administrator",
            ],
            "instructor",
        ),  # Moodle's site administrator teaching
        ([VOCABULARY + "institution/person#Instructor"], "learner"),  # a faculty member, no role in this course
        ([VOCABULARY + "membership#Mentor"], "learner"),
        ([], "learner"),
        (None, "learner"),
        ([42, "http://example.com/#Instructor"], "learner"),
    ],
)
def test_launch_role(roles, role):
    assert launch_role(roles) == role


def test_flags_stuck_no_progress_and_quiet():
    assert learner_flags(rules=RULES, mean_mastery=[0.2, 0.3, 0.4, 0.5], last_answer_at=NOW, now=NOW) == []
    labels = [
        flag.label
        for flag in learner_flags(
            rules=RULES,
            mean_mastery=[0.4, 0.41, 0.405, 0.40],
            last_answer_at=NOW - timedelta(days=8),
            now=NOW,
            why="remediation",
            struggling=[0.3, 0.29, 0.25, 0.29],
        )
    ]
    assert labels == ["stuck in remediation", "no progress", "gone quiet"]
    # Remediation that works is not stuck; too few answers say nothing yet; a week less a minute is not quiet.
    assert (
        learner_flags(
            rules=RULES,
            mean_mastery=[0.4],
            last_answer_at=NOW - timedelta(days=7, minutes=-1),
            now=NOW,
            why="remediation",
            struggling=[0.2, 0.3, 0.5],
        )
        == []
    )


@pytest.mark.django_db
def test_a_staff_group_and_its_teacher(client, django_user_model):
    course = course_with_curriculum("fractions")
    api = client_for(key_for(course))
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {
            "id": f"{learner}-{step}",
            "learner": learner,
            "item": "q1",
            "correct": step % 2,
            "timestamp": (start + timedelta(minutes=step)).isoformat(),
        }
        for learner in ("ann", "ben", "cat")
        for step in range(4)
    ]
    assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 201
    group = CourseClass.objects.create(course=course, name="Group A", source=CourseClass.STAFF)
    other = CourseClass.objects.create(course=course, name="Group B", source=CourseClass.STAFF)
    for name, course_class in (("ann", group), ("ben", group), ("cat", other)):
        learner = Learner.objects.get(course=course, external_id=name)
        ClassMember.objects.create(course_class=course_class, learner=learner, external_id=name, name=name.title())
    teacher = django_user_model.objects.create_user(username="tess", password="x")
    TeachingGrant.objects.create(course_class=group, user=teacher)
    client.force_login(teacher)

    page = client.get("/dashboard/fractions/learners/")
    assert page.status_code == 200
    assert [row["external_id"] for row in page.context["rows"]] == ["ann", "ben"]
    assert client.get(f"/dashboard/fractions/learners/?class={other.pk}").status_code == 404
    cat = Learner.objects.get(external_id="cat")
    assert client.get(f"/dashboard/fractions/learners/{cat.pk}/").status_code == 404
    ann = Learner.objects.get(external_id="ann")
    page = client.get(f"/dashboard/fractions/learners/{ann.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "What comes next" in text and "Mastery over time" in text and "mastery-line" in text
    assert page.context["report"].answers == 4 and len(page.context["report"].history.at) == 4
    # q1 was just answered (wrongly last): the policy has nothing for ann right now, and says so.
    assert page.context["report"].choice.item is None and "Nothing to practise right now" in text
    assert "Group A" in text and "Recent answers" in text
    assert client.post(f"/dashboard/fractions/classes/{group.pk}/roster/").status_code == 404  # no LMS roster


@pytest.mark.django_db
def test_staff_see_everyone_and_filter_by_class(client, staff_user):
    course = course_with_curriculum("fractions")
    api = client_for(key_for(course))
    rows = [
        {"id": f"{learner}-0", "learner": learner, "item": "q1", "correct": 1, "timestamp": "2026-11-25T10:00:00Z"}
        for learner in ("ann", "ben")
    ]
    assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 201
    group = CourseClass.objects.create(course=course, name="Group A", source=CourseClass.STAFF)
    ClassMember.objects.create(course_class=group, learner=Learner.objects.get(external_id="ann"), external_id="ann")
    ClassMember.objects.create(course_class=group, external_id="dan", name="Dan Roster")  # not started
    client.force_login(staff_user)
    everyone = client.get("/dashboard/fractions/learners/")
    assert sorted(row["external_id"] for row in everyone.context["rows"]) == ["ann", "ben", "dan"]
    only = client.get(f"/dashboard/fractions/learners/?class={group.pk}")
    assert [row["external_id"] for row in only.context["rows"]] == ["dan", "ann"] or sorted(
        row["external_id"] for row in only.context["rows"]
    ) == ["ann", "dan"]
    overview = client.get(f"/dashboard/fractions/?class={group.pk}")
    assert overview.context["counts"]["learners"] == 1 and overview.context["counts"]["interactions"] == 1
    assert client.get("/dashboard/fractions/").context["counts"]["learners"] == 2
    assert client.get("/dashboard/fractions/items/").status_code == 200


@pytest.mark.django_db
def test_the_teacher_pages_may_sit_in_the_lms_iframe_only_when_it_is_on(client, django_user_model, settings):
    course = course_with_curriculum("fractions")
    group = CourseClass.objects.create(course=course, name="Group A", source=CourseClass.STAFF)
    teacher = django_user_model.objects.create_user(username="tess", password="x")
    TeachingGrant.objects.create(course_class=group, user=teacher)
    client.force_login(teacher)
    assert client.get("/dashboard/fractions/learners/")["X-Frame-Options"] == "DENY"
    settings.TUTOR_LTI_IFRAME, settings.TUTOR_LTI_FRAME_ANCESTORS = True, ["https://lms.example"]
    response = client.get("/dashboard/fractions/learners/")
    assert "X-Frame-Options" not in response
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://lms.example"


@pytest.mark.django_db
def test_mastery_history_ends_where_the_stored_mastery_is(isolated_models):
    from tracing.models import Mastery
    from tracing.practice import mastery_history

    course = course_with_curriculum("fractions")
    api = client_for(key_for(course))
    rows = [
        {
            "id": f"r{step}",
            "learner": "ann",
            "item": ["q1", "q2", "q17"][step % 3],
            "correct": step % 2,
            "timestamp": f"2026-11-25T10:{step:02d}:00Z",
        }
        for step in range(9)
    ]
    assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 201
    learner = Learner.objects.get(external_id="ann")
    history = mastery_history(course=course, learner=learner)
    assert history.mastery.shape == (9, 3) and len(history.at) == 9 and list(history.at) == sorted(history.at)
    stored = dict(Mastery.objects.filter(learner=learner).values_list("skill__external_id", "probability"))
    assert dict(zip(history.skills, history.mastery[-1])) == pytest.approx(stored, abs=1e-6)
    assert history.mean()[-1] == pytest.approx(sum(stored.values()) / 3, abs=1e-6)
