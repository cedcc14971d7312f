"""Issue 21 on the learner page: the summary when the learner stops, the reviews and the goal picker."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from django.urls import reverse

from curriculum.models import Item
from tutor.models import Learner
from tutor.web import practice

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture(autouse=True)
def _isolated(isolated_models):
    yield


def _answer(client, html: str, *, right: bool) -> str:
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    item = Item.objects.get(external_id=signing.loads(token, salt=practice.TOKEN_SALT)["item"])
    response = client.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": item.answer if right else "no idea"}
    )
    assert response.status_code == 200
    return response.content.decode()


def test_the_summary_says_what_moved_and_what_is_next(learner_client, demo_course):
    empty = learner_client.get(reverse("learn_summary", args=["arithmetic"]))
    assert empty.status_code == 200 and "Nothing answered yet" in empty.content.decode()
    page = learner_client.get(reverse("learn", args=["arithmetic"])).content.decode()
    assert reverse("learn_summary", args=["arithmetic"]) in page
    for step in range(6):
        page = _answer(learner_client, page, right=step != 2)
    response = learner_client.get(reverse("learn_summary", args=["arithmetic"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>6</strong> answers, <strong>5</strong> right" in html
    learner = Learner.objects.get(course=demo_course)
    summary = practice.sitting_summary(course=demo_course, learner=learner)
    assert summary.answers == 6 and summary.moves
    assert sum(move.answers for move in summary.moves) >= 6
    moved = summary.moves[0]
    assert moved.after > moved.before and f'data-skill="{moved.id}"' in html
    assert "What is next" in html and summary.next_reason in html.replace("&#x27;", "'")


def test_a_goal_makes_the_policy_work_towards_that_skill(learner_client, demo_course):
    from curriculum.services import graph_for_course

    graph = graph_for_course(course=demo_course)
    goal = next(skill for skill in graph.topological_order() if graph.parents(skill))
    allowed = set(graph.restricted((goal,)).skills)
    response = learner_client.post(reverse("learn_goal", args=["arithmetic"]), {"goal": goal})
    assert response.status_code == 302
    page = learner_client.get(reverse("learn", args=["arithmetic"])).content.decode()
    assert f'<option value="{goal}" selected>' in page
    for step in range(20):
        found = re.search(r'name="token" value="([^"]+)"', page)
        if found is None:
            break
        token = found.group(1)
        item = Item.objects.get(external_id=signing.loads(token, salt=practice.TOKEN_SALT)["item"])
        # Every question serves the goal or a skill it builds on.
        assert {skill.external_id for skill in item.skills.all()} & allowed, (step, item.external_id)
        page = _answer(learner_client, page, right=True)
    # Done once the goal and what it builds on are mastered (three answers each at least), not the course.
    assert found is None and step >= 3 * len(allowed) and "You have mastered your goal" in page
    assert step < 20
    bad = learner_client.post(reverse("learn_goal", args=["arithmetic"]), {"goal": "no-such-skill"})
    assert bad.status_code == 400 and "pick one of the listed skills" in bad.content.decode()
    cleared = learner_client.post(reverse("learn_goal", args=["arithmetic"]), {"goal": ""})
    assert cleared.status_code == 302
    assert '<option value="" selected>' in learner_client.get(reverse("learn", args=["arithmetic"])).content.decode()


def test_the_goal_is_kept_with_the_learner_across_sign_ins(client, learner_user, demo_course):
    from curriculum.services import graph_for_course

    goal = graph_for_course(course=demo_course).topological_order()[-1]
    client.force_login(learner_user)
    assert client.post(reverse("learn_goal", args=["arithmetic"]), {"goal": goal}).status_code == 302
    client.logout()  # a new session: another day, another device
    client.force_login(learner_user)
    page = client.get(reverse("learn", args=["arithmetic"])).content.decode()
    assert f'<option value="{goal}" selected>' in page


def test_the_summary_names_the_next_step_towards_the_learners_goal(learner_client, demo_course):
    from curriculum.services import graph_for_course

    goal = graph_for_course(course=demo_course).topological_order()[0]
    learner_client.post(reverse("learn_goal", args=["arithmetic"]), {"goal": goal})
    page = learner_client.get(reverse("learn", args=["arithmetic"])).content.decode()
    for _ in range(15):
        if 'name="token"' not in page:
            break
        page = _answer(learner_client, page, right=True)
    assert "You have mastered your goal" in page
    summary = learner_client.get(reverse("learn_summary", args=["arithmetic"])).content.decode()
    assert "You have mastered your goal" in summary.replace("&#x27;", "'")
