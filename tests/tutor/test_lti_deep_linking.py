"""LTI Deep Linking 2.0 against lti1p3platform: an instructor places a practice activity (course and
goal skills), the platform accepts the signed response, a learner launches the placed link, practises
towards its goals, and a grade (mastery of the goals only) arrives on the activity's own line item."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.tutor.api_support import client_for, key_for
from tests.tutor.test_lti import LEARNER_ROLE, course, launch_form, lms, tool  # noqa: F401 (fixtures)
from tests.tutor.test_lti_teachers import INSTRUCTOR
from tutor.lti.models import LtiGradeTarget, PracticeActivity
from tutor.lti.services import learner_grade
from tutor.models import Learner

pytestmark = pytest.mark.django_db

RETURN_URL = "https://lms.example/deep-link-return"


def _place(lms, goals: list[str], title: str = "Adding practice") -> tuple[Client, dict]:
    teacher = Client()
    response = teacher.post(
        "/lti/launch/",
        launch_form(
            teacher, lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper", deep_link_return=RETURN_URL
        ),
    )
    assert response.status_code == 302 and response["Location"] == "/lti/deep-link/", response.content
    page = teacher.get("/lti/deep-link/")
    assert page.status_code == 200 and b'value="frac-add"' in page.content
    placed = teacher.post("/lti/deep-link/", {"title": title, "goals": goals})
    assert placed.status_code == 200, placed.content
    html = placed.content.decode()
    assert f'action="{RETURN_URL}"' in html
    token = re.search(r'name="JWT" value="([^"]+)"', html).group(1)
    return teacher, {"items": lms.platform.validate_deeplinking_resp({"JWT": token}), "html": html}


def test_an_instructor_places_an_activity_and_its_grade_arrives_on_its_own_line_item(
    lms, tool, course, django_capture_on_commit_callbacks
):
    teacher, placed = _place(lms, ["add"])
    activity = PracticeActivity.objects.get()
    assert activity.course == course and activity.goals == ["add"] and activity.context_id == "context-7"
    [item] = placed["items"]  # signed by the tool, checked by the platform against the tool's keys
    assert item["type"] == "ltiResourceLink" and item["url"] == "http://testserver/lti/launch/"
    assert item["custom"] == {"tutor_activity": str(activity.pk)} and item["title"] == "Adding practice"
    assert item["lineItem"]["scoreMaximum"] == 100 and item["lineItem"]["resourceId"] == f"activity-{activity.pk}"
    assert teacher.get("/lti/deep-link/").status_code == 400  # one placement per request

    # The LMS made line item 5 for the placed link; a learner launches it.
    learner_client = Client()
    form = launch_form(learner_client, lms, user="student-1", custom=item["custom"], line_item=f"{lms.url}/lineitems/5")
    assert learner_client.post("/lti/launch/", form)["Location"] == "/learn/fractions/"
    learner = Learner.objects.get(course=course, external_id="student-1")
    target = LtiGradeTarget.objects.get(learner=learner)
    assert target.activity == activity and target.lineitem_url.endswith("/lineitems/5")

    # The learner page practises towards the activity's goal: "add" and what it builds on, not frac-add.
    page = learner_client.get("/learn/fractions/")
    assert page.status_code == 200 and page.context["activity_goals"] == ["add"]
    assert page.context["question"].item.external_id in {"q1", "q2", "q3"}

    api = client_for(key_for(course))
    rows = [
        {
            "id": f"r{step}",
            "learner": "student-1",
            "item": ["q1", "q2", "q17"][step % 3],
            "correct": 1,
            "timestamp": f"2026-11-25T10:0{step}:00Z",
        }
        for step in range(6)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 201
    assert lms.refusals == []
    [score] = lms.scores
    goal_grade, course_grade = learner_grade(learner=learner, skills=["add"]), learner_grade(learner=learner)
    assert score["line_item"] == "5" and score["userId"] == "student-1"
    assert score["scoreGiven"] == pytest.approx(100 * goal_grade, abs=1e-3) and goal_grade != course_grade


def test_placing_needs_a_teacher_and_goals_of_the_course(lms, tool, course):
    learner = Client()
    response = learner.post("/lti/launch/", launch_form(learner, lms, user="student-1", deep_link_return=RETURN_URL))
    assert response.status_code == 403 and b"Only teachers" in response.content
    assert learner.get("/lti/deep-link/").status_code == 400

    teacher = Client()
    teacher.post(
        "/lti/launch/",
        launch_form(
            teacher, lms, user="teacher-1", roles=[INSTRUCTOR], name="Grace Hopper", deep_link_return=RETURN_URL
        ),
    )
    for goals in ([], ["no-such-skill"]):
        refused = teacher.post("/lti/deep-link/", {"title": "x", "goals": goals})
        assert refused.status_code == 400 and b"goals" in refused.content
    assert not PracticeActivity.objects.exists()


def test_a_link_to_an_activity_that_is_gone_is_refused(lms, tool, course):
    browser = Client()
    form = launch_form(browser, lms, user="student-1", custom={"tutor_activity": "999"})
    response = browser.post("/lti/launch/", form)
    assert response.status_code == 404 and b"not available any more" in response.content
