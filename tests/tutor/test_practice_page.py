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
def _isolated(settings, tmp_path):
    from tracing import services

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    services._cache.clear()
    yield
    services._cache.clear()


@pytest.fixture
def learner_client(client, learner_user):
    client.force_login(learner_user)
    return client


def _answer(client, html: str, *, right: bool) -> str:
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    item = Item.objects.get(external_id=signing.loads(token, salt=practice.TOKEN_SALT)["item"])
    response = client.post(reverse("learn_answer", args=["arithmetic"]),
                           {"token": token, "response": item.answer if right else "no idea"})
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
