"""Issue 21 through the services: no repeated question while unseen ones remain, a wrongly answered question
waits out its gap, and a skill never shows mastered (page, API, policy) on fewer answers than the course minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from curriculum.models import Course
from curriculum.services import curriculum_import
from tests.tutor.api_support import client_for, key_for
from tracing.practice import learner_view
from tutor.actions import answers_record, next_item_choose
from tutor.models import Learner
from tutor.web.practice import MASTERED, learner_progress

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POOL = 12


def document(policy: dict | None = None) -> dict:
    # One skill with a dozen questions at three levels, and one that builds on it.
    return {
        "skills": [{"id": "mult", "name": "Multiplication facts"}, {"id": "div", "name": "Long division"}],
        "items": [
            {
                "id": f"mult-{n:02d}",
                "skills": ["mult"],
                "body": f"{n} x 3",
                "answer": str(3 * n),
                "difficulty": 1 + n % 3,
            }
            for n in range(POOL)
        ]
        + [
            {"id": f"div-{n}", "skills": ["div"], "body": f"{3 * n} / 3", "answer": str(n), "difficulty": 1 + n % 2}
            for n in range(6)
        ],
        "prerequisites": [{"from": "mult", "to": "div"}],
        **({"policy": policy} if policy else {}),
    }


def course_with(policy: dict | None = None) -> Course:
    course = Course.objects.create(slug="facts", name="Facts")
    curriculum_import(course=course, document=document(policy))
    return course


def record(course: Course, learner: str, item: str, correct: float, at: datetime) -> None:
    answers_record(
        course=course,
        rows=[
            {
                "id": f"{learner}-{at.timestamp()}",
                "learner": learner,
                "item": item,
                "correct": correct,
                "timestamp": at.isoformat(),
            }
        ],
    )


@pytest.mark.django_db
def test_thirty_answers_on_one_skill_repeat_nothing_while_unseen_questions_remain():
    # Every other answer wrong: the skill stays unmastered, so all 30 questions are of it.
    course = course_with({"goals": ["mult"], "retry_gap_minutes": 10})
    learner = Learner.objects.create(course=course, external_id="ada")
    shown, wrong_at = [], {}
    at = START
    for step in range(30):
        choice = next_item_choose(course=course, learner=learner, now=at)
        assert choice.item is not None and choice.skill == "mult", (step, choice)
        item = choice.item
        if len(set(shown)) < POOL:
            assert item not in shown, f"answer {step + 1}: {item} again while unseen questions remain"
        else:
            # The pool is used up: the question seen longest ago among those not waiting out a wrong answer.
            waiting = {seen for seen, moment in wrong_at.items() if at - moment < timedelta(minutes=10)}
            last_seen = {seen: position for position, seen in enumerate(shown)}
            allowed = [seen for seen in last_seen if seen not in waiting and seen != shown[-1]]
            assert item == min(allowed, key=last_seen.get)
        assert item not in wrong_at or at - wrong_at[item] >= timedelta(minutes=10)
        correct = float(step % 2)
        record(course, "ada", item, correct, at)
        if not correct:
            wrong_at[item] = at
        shown.append(item)
        at += timedelta(minutes=1)
    assert len(set(shown[:POOL])) == POOL


@pytest.mark.django_db
def test_a_skill_never_shows_mastered_on_fewer_answers_than_the_course_minimum():
    # A low threshold: the model calls the skill known after one right answer; the evidence rule must hold it.
    # unlock_threshold null: what builds on it waits for the evidence too (the default is the next test).
    course = course_with({"threshold": 0.6, "min_answers": 4, "unlock_threshold": None})
    learner = Learner.objects.create(course=course, external_id="bo")
    api = client_for(key_for(course))
    at = START
    answers = 0
    while True:
        view = learner_view(course=course, learner=learner, now=at)
        progress = {skill.id: skill for skill in learner_progress(course=course, learner=learner, now=at).skills}
        rows = (
            {row["skill"]: row for row in api.get("/api/v1/courses/facts/learners/bo/mastery").json()["mastery"]}
            if answers
            else {}
        )
        shown_mastered = progress["mult"].status == MASTERED
        assert shown_mastered == view.mastered("mult")
        if rows:
            assert rows["mult"]["mastered"] == shown_mastered and rows["mult"]["answers"] == answers
        if answers < 4:
            assert not shown_mastered and progress["div"].status == "locked"
        if shown_mastered:
            break
        choice = next_item_choose(course=course, learner=learner, now=at)
        assert choice.skill == "mult"
        if view.mastery["mult"] >= 0.6:
            # Known on thin evidence: the policy asks to confirm it and says on what it rests.
            assert choice.why == "confirm" and choice.evidence.answers == answers
        record(course, "bo", choice.item, 1.0, at)
        answers += 1
        at += timedelta(minutes=1)
        assert answers <= 8
    assert answers == 4
    assert "4 answers" in progress["mult"].evidence
    # Only now does the next skill open.
    assert next_item_choose(course=course, learner=learner, now=at).skill == "div"


@pytest.mark.django_db
def test_what_builds_on_a_skill_opens_before_its_evidence_is_in_but_it_never_shows_mastered_early():
    # The default unlock_threshold (capped at this course's threshold, 0.6): one right answer opens "div",
    # on the page and for the policy alike, while "mult" still needs its four answers to show mastered.
    course = course_with({"threshold": 0.6, "min_answers": 4})
    learner = Learner.objects.create(course=course, external_id="al")
    at = START
    answers = 0
    while learner_view(course=course, learner=learner, now=at).mastery["mult"] < 0.6:
        progress = {skill.id: skill for skill in learner_progress(course=course, learner=learner, now=at).skills}
        assert progress["div"].status == "locked"
        choice = next_item_choose(course=course, learner=learner, now=at)
        record(course, "al", choice.item, 1.0, at)
        answers += 1
        at += timedelta(minutes=1)
    assert answers < 4
    view = learner_view(course=course, learner=learner, now=at)
    assert not view.mastered("mult") and view.opens("mult")
    progress = {skill.id: skill for skill in learner_progress(course=course, learner=learner, now=at).skills}
    assert progress["mult"].status != MASTERED and progress["div"].status == "in-progress"
    assert f"needs {4 - answers} more answer" in progress["mult"].evidence
    shown = []
    for _ in range(12):
        choice = next_item_choose(course=course, learner=learner, now=at)
        assert not choice.done
        shown.append(choice.skill)
        record(course, "al", choice.item, 1.0, at)
        at += timedelta(minutes=1)
        if learner_view(course=course, learner=learner, now=at).mastered("mult"):
            break
    assert "div" in shown  # practised before "mult" was confirmed
    view = learner_view(course=course, learner=learner, now=at)
    assert view.mastered("mult") and view.evidence["mult"].answers >= 4


@pytest.mark.django_db
def test_mastery_needs_an_answer_above_the_easiest_level():
    # unlock_threshold null: "div" stays shut, so the confirming question comes next (else "div" may go first).
    course = course_with({"threshold": 0.6, "min_answers": 3, "unlock_threshold": None})
    learner = Learner.objects.create(course=course, external_id="cy")
    at = START
    for item in ("mult-00", "mult-03", "mult-06", "mult-09"):  # all at the easiest level (1)
        record(course, "cy", item, 1.0, at)
        at += timedelta(minutes=1)
    view = learner_view(course=course, learner=learner, now=at)
    assert view.mastery["mult"] >= 0.6 and view.evidence["mult"].answers == 4 and not view.mastered("mult")
    skill = next(s for s in learner_progress(course=course, learner=learner, now=at).skills if s.id == "mult")
    assert skill.status != MASTERED and "one harder question" in skill.evidence
    choice = next_item_choose(course=course, learner=learner, now=at)
    assert choice.why == "confirm" and int(choice.item.split("-")[1]) % 3 != 0  # a harder one
    record(course, "cy", choice.item, 1.0, at)
    assert learner_view(course=course, learner=learner, now=at + timedelta(minutes=1)).mastered("mult")


@pytest.mark.django_db
def test_the_review_list_is_what_the_policy_schedules():
    course = course_with({"threshold": 0.6, "min_answers": 3, "review_after_days": 1})
    learner = Learner.objects.create(course=course, external_id="di")
    at = START
    for item in ("mult-00", "mult-01", "mult-02", "div-0", "div-1", "div-2"):
        record(course, "di", item, 1.0, at)
        at += timedelta(hours=2)
    at -= timedelta(hours=2)
    progress = learner_progress(course=course, learner=learner, now=at + timedelta(minutes=1))
    reviews = progress.reviews
    # Both skills mastered; each comes back a day after its last practice, mult (practised first) first.
    assert [(review.id, review.reason, review.due_now) for review in reviews] == [
        ("mult", "recheck", False),
        ("div", "recheck", False),
    ]
    assert reviews[0].due == START + timedelta(hours=4, days=1) and reviews[1].due == at + timedelta(days=1)
    # The policy agrees: done until the first review is due, then that review, then the next.
    before = next_item_choose(course=course, learner=learner, now=reviews[0].due - timedelta(minutes=1))
    assert before.done
    first = next_item_choose(course=course, learner=learner, now=reviews[0].due + timedelta(minutes=1))
    assert (first.why, first.skill) == ("review", "mult")
    second = learner_progress(course=course, learner=learner, now=reviews[0].due + timedelta(minutes=1)).reviews
    assert second[0].id == "mult" and second[0].due_now
    # Shown on the page, with when.
    from django.template.loader import render_to_string

    html = render_to_string("web/_mastery_bars.html", {"progress": progress, "threshold_percent": 60, "compact": True})
    assert 'data-skill="mult"' in html and "in 17\xa0hours, 59\xa0minutes" in html


def test_fading_skills_are_due_when_the_model_says_they_fall_below_the_threshold():
    import math
    from types import SimpleNamespace

    import numpy as np

    from curriculum.graph import PrerequisiteGraph
    from curriculum.policies.base import ItemSpec, PolicyConfig
    from curriculum.policies.frontier import candidate_skills, next_item
    from tracing.practice import LearnerView, learner_reviews

    graph = PrerequisiteGraph(["a", "b"], [])
    items = [ItemSpec(f"{skill}{n}", (skill,)) for skill in "ab" for n in range(3)]
    day = 86_400.0

    class Forgetting:
        # P(known) = 0.99 * exp(-rate * days since 0): a falls below 0.95 after ~0.83 days, b after ~4.2.
        rates = np.array([0.05, 0.01])

        def mastery_at(self, state, at):
            return 0.99 * np.exp(-self.rates * at / day)

    model = SimpleNamespace(estimator=Forgetting(), skill_index={"a": 0, "b": 1})
    config = PolicyConfig(min_answers=0, review_after_days=None)
    view = LearnerView(
        model=model,
        state=None,
        moment=0.0,
        now_mastery=np.array([0.99, 0.99]),
        mastery={"a": 0.99, "b": 0.99},
        mastery_before={"a": 0.99, "b": 0.99},
        items=items,
        seen={},
        history=[],
        last_practice={"a": 0.0, "b": 0.0},
        evidence={},
        graph=graph,
        config=config,
    )
    reviews = learner_reviews(course=None, view=view)
    assert [review.skill for review in reviews] == ["a", "b"] and {r.reason for r in reviews} == {"fade"}
    for review, rate in zip(reviews, Forgetting.rates):
        exact = math.log(0.99 / 0.95) / rate * day
        assert exact <= review.due_at <= exact + 60  # to the minute
        # The policy takes it up as a review from then on, and not before.
        for moment, expect in ((review.due_at - 120, False), (review.due_at + 1, True)):
            now = dict(zip("ab", Forgetting().mastery_at(None, moment)))
            candidates = candidate_skills(
                mastery=now, graph=graph, items=items, config=config, mastery_before={"a": 0.99, "b": 0.99}
            )
            assert (candidates.get(review.skill) == "review") == expect
    first = next_item(
        mastery=dict(zip("ab", Forgetting().mastery_at(None, reviews[0].due_at + 1))),
        graph=graph,
        items=items,
        config=config,
        mastery_before={"a": 0.99, "b": 0.99},
        now=reviews[0].due_at + 1,
    )
    assert (first.skill, first.why) == ("a", "review")
