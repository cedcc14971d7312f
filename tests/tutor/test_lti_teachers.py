"""Teachers through LTI, against lti1p3platform: an instructor's launch opens their class's dashboard
(scoped, no staff rights), the roster comes from the platform's NRPS endpoint, and the teacher's pages
show every learner of the class by name. The platform's side is the one of tests/tutor/test_lti.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from lti_tool.models import LtiDeployment

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tests.tutor.test_lti import LEARNER_ROLE, course, launch_form, lms, tool  # noqa: F401 (fixtures)
from tutor.lti.models import ClassMember, CourseClass, LtiCourseLink, TeachingGrant
from tutor.lti.services import lti_roster_sync
from tutor.models import Enrolment, Learner

pytestmark = pytest.mark.django_db

VOCABULARY = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTRUCTOR = VOCABULARY + "membership#Instructor"
TEACHING_ASSISTANT = VOCABULARY + "membership/Instructor#TeachingAssistant"
ADMINISTRATOR = VOCABULARY + "institution/person#Administrator"

ROSTER = [
    {"user_id": "teacher-1", "roles": [INSTRUCTOR], "name": "Grace Hopper", "email": "grace@example.com"},
    {"user_id": "student-1", "roles": [LEARNER_ROLE], "name": "Ada Lovelace", "email": "ada@example.com"},
    {"user_id": "student-2", "roles": [LEARNER_ROLE], "given_name": "Bob", "family_name": "Babbage"},
    {"user_id": "student-3", "roles": [LEARNER_ROLE], "name": "Carol Shaw", "status": "Inactive"},
]


def _answers(course, learner: str, count: int = 6) -> None:
    api = client_for(key_for(course, name=f"key-{learner}"))
    start = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {
            "id": f"{learner}-{step}",
            "learner": learner,
            "item": ["q1", "q2", "q17"][step % 3],
            "correct": step % 2,
            "timestamp": (start + timedelta(minutes=step)).isoformat(),
        }
        for step in range(count)
    ]
    assert api.post(f"/api/v1/courses/{course.slug}/interactions", rows, format="json").status_code == 201


def _launch(
    lms, *, user: str, roles: list[str], name: str, context: str = "context-7", capture=None, roster: bool = True
) -> tuple[Client, object]:
    browser = Client()
    form = launch_form(
        browser,
        lms,
        user=user,
        roles=roles,
        name=name,
        context=context,
        roster=roster,
        context_title="Fractions 101" if context == "context-7" else f"Class {context}",
    )
    if capture is not None:
        with capture(execute=True):
            response = browser.post("/lti/launch/", form)
    else:
        response = browser.post("/lti/launch/", form)
    return browser, response


def test_instructor_launch_opens_the_class_with_its_lms_roster_and_nothing_else(
    lms, tool, course, django_capture_on_commit_callbacks
):
    lms.members = list(ROSTER)
    # Ada launches as a learner first and answers; a learner of another LMS context too.
    ada, response = _launch(lms, user="student-1", roles=[LEARNER_ROLE], name="Ada Lovelace")
    assert response["Location"] == "/learn/fractions/"
    _answers(course, "student-1")
    _, response = _launch(lms, user="student-9", roles=[LEARNER_ROLE], name="Eve Other", context="context-8")
    assert response.status_code == 302
    _answers(course, "student-9")

    teacher, response = _launch(
        lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper", capture=django_capture_on_commit_callbacks
    )
    course_class = CourseClass.objects.get(course=course, context_id="context-7")
    assert response.status_code == 302, response.content
    assert response["Location"] == f"/dashboard/fractions/learners/?class={course_class.pk}"
    grant = TeachingGrant.objects.select_related("user").get(course_class=course_class)
    assert grant.role == "instructor" and not grant.user.is_staff and not grant.user.is_superuser
    assert not Learner.objects.filter(external_id="teacher-1").exists()
    assert not Enrolment.objects.filter(user=grant.user).exists()

    # The roster arrived from the platform (two pages), names and roles, no e-mail kept.
    assert lms.refusals == [] and lms.roster_requests == 2
    members = {member.external_id: member for member in ClassMember.objects.filter(course_class=course_class)}
    assert set(members) == {"teacher-1", "student-1", "student-2", "student-3"}
    assert members["student-2"].name == "Bob Babbage" and members["student-2"].learner is None
    assert members["student-1"].learner == Learner.objects.get(course=course, external_id="student-1")
    assert members["student-3"].status == "inactive" and members["teacher-1"].role == "instructor"
    assert "email" not in {field.name for field in ClassMember._meta.fields}
    course_class.refresh_from_db()
    assert course_class.name == "Fractions 101" and course_class.roster_synced_at and not course_class.roster_error

    page = teacher.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Ada Lovelace" in text and "Bob Babbage" in text and "Carol Shaw" in text and "not started" in text
    assert "Eve Other" not in text and "student-9" not in text and "Grace Hopper" not in text
    ada_learner = Learner.objects.get(course=course, external_id="student-1")
    assert f"/dashboard/fractions/learners/{ada_learner.pk}/" in text

    # Scoped: the class's learners only, no other course, no staff pages, no admin.
    eve = Learner.objects.get(course=course, external_id="student-9")
    assert teacher.get(f"/dashboard/fractions/learners/{ada_learner.pk}/").status_code == 200
    assert teacher.get(f"/dashboard/fractions/learners/{eve.pk}/").status_code == 404
    other_class = CourseClass.objects.get(course=course, context_id="context-8")
    assert teacher.get(f"/dashboard/fractions/?class={other_class.pk}").status_code == 404
    assert teacher.get(f"/dashboard/fractions/learners/?class={other_class.pk}").status_code == 404
    overview = teacher.get("/dashboard/fractions/")
    assert overview.status_code == 200 and overview.context["counts"]["learners"] == 1
    assert overview.context["counts"]["interactions"] == 6
    assert [learner.external_id for learner in overview.context["matrix"].learners] == ["student-1"]
    course_with_curriculum("geometry")
    for path in (
        "/dashboard/geometry/",
        "/dashboard/geometry/learners/",
        "/dashboard/fractions/items/",
        "/dashboard/fractions/fits/",
        "/dashboard/nothing-here/",
    ):
        assert teacher.get(path).status_code == 403, path
    assert teacher.get("/admin/").status_code == 302  # to the admin's login: not staff
    assert teacher.get("/learn/fractions/").status_code == 404  # teaching is not practising
    index = teacher.get("/dashboard/")
    assert index.status_code == 200 and [row["course"].slug for row in index.context["rows"]] == ["fractions"]

    # Ada, a learner, is not a teacher.
    assert ada.get("/dashboard/fractions/").status_code == 403
    assert ada.get("/dashboard/").status_code == 403


@pytest.mark.parametrize(
    "roles, role",
    [
        ([TEACHING_ASSISTANT], "ta"),
        ([ADMINISTRATOR], "administrator"),
        ([VOCABULARY + "membership#Administrator", LEARNER_ROLE], "administrator"),
    ],
)
def test_teaching_assistants_and_administrators_get_the_class_too(lms, tool, course, roles, role):
    teacher, response = _launch(lms, user="staff-7", roles=roles, name="Tim Berners", roster=False)
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/fractions/learners/?class=")
    assert TeachingGrant.objects.get(user__username__endswith="staff-7").role == role
    assert teacher.get(response["Location"]).status_code == 200


def test_an_institution_administrator_who_is_a_learner_here_learns(lms, tool, course):
    _, response = _launch(lms, user="admin-1", roles=[ADMINISTRATOR, LEARNER_ROLE], name="Ann Admin")
    assert response["Location"] == "/learn/fractions/"
    assert not TeachingGrant.objects.exists()


def test_the_roster_follows_the_lms_and_a_refusal_is_kept_on_the_class(lms, tool, course):
    lms.members = list(ROSTER)
    teacher, _ = _launch(lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper")
    course_class = CourseClass.objects.get(context_id="context-7")
    outcome = lti_roster_sync(course_class=course_class)
    assert (outcome.members, outcome.learners, outcome.removed) == (4, 3, 0)

    lms.members = [member for member in ROSTER if member["user_id"] != "student-2"]
    assert lti_roster_sync(course_class=course_class).removed == 1
    assert ClassMember.objects.get(external_id="student-2").status == "deleted"

    # The teacher's refresh button does the same; a platform that refuses the tool is reported, not a 500.
    from lti1p3platform.registration import Registration

    from tests.tutor.test_lti import STRANGER_PUBLIC

    lms.platform.get_registration().set_tool_key_set({"keys": [Registration.get_jwk(STRANGER_PUBLIC)]})
    response = teacher.post(f"/dashboard/fractions/classes/{course_class.pk}/roster/", follow=True)
    assert response.status_code == 200 and "did not send the roster" in response.content.decode()
    course_class.refresh_from_db()
    assert "400" in course_class.roster_error


def test_a_learner_prefix_names_roster_learners_as_launches_do(lms, tool, course):
    LtiCourseLink.objects.filter(course=course).update(learner_prefix="moodle:")
    lms.members = list(ROSTER)
    _launch(lms, user="student-1", roles=[LEARNER_ROLE], name="Ada Lovelace")
    _launch(lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper")
    lti_roster_sync(course_class=CourseClass.objects.get(context_id="context-7"))
    member = ClassMember.objects.get(lms_user_id="student-1")
    assert member.external_id == "moodle:student-1" and member.learner.external_id == "moodle:student-1"


def test_a_launch_without_a_context_cannot_open_a_class(lms, tool, course):
    _, response = _launch(lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper", context="")
    assert response.status_code == 400 and not TeachingGrant.objects.exists()


def test_another_deployment_with_the_same_context_id_is_another_class(lms, tool, course):
    LtiDeployment.objects.create(registration=tool, deployment_id="dep-2", is_active=True)
    LtiCourseLink.objects.create(
        deployment=LtiDeployment.objects.get(deployment_id="dep-2"), context_id="", course=course
    )
    first, _ = _launch(lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper")
    browser = Client()
    form = launch_form(browser, lms, user="teacher-2", roles=[INSTRUCTOR], name="Alan Turing", deployment="dep-2")
    assert browser.post("/lti/launch/", form).status_code == 302
    assert CourseClass.objects.filter(context_id="context-7").count() == 2
    mine = CourseClass.objects.get(grants__user__username__endswith="teacher-2")
    assert first.get(f"/dashboard/fractions/learners/?class={mine.pk}").status_code == 404


def test_a_teacher_the_lms_lists_as_a_learner_now_loses_the_class(lms, tool, course):
    lms.members = list(ROSTER)
    teacher, response = _launch(lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper")
    admin, _ = _launch(lms, user="admin-9", roles=[ADMINISTRATOR], name="Ann Admin")  # not on the course roster
    course_class = CourseClass.objects.get(context_id="context-7")
    assert lti_roster_sync(course_class=course_class).revoked == 0

    lms.members = [
        dict(member, roles=[LEARNER_ROLE]) if member["user_id"] == "teacher-1" else member for member in ROSTER
    ]
    assert lti_roster_sync(course_class=course_class).revoked == 1
    assert teacher.get(response["Location"]).status_code == 403
    assert admin.get(response["Location"]).status_code == 200
