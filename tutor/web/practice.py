"""What the learner page needs from the services: the signed-in learner, the question, the answer, mastery."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.core import signing
from django.utils import timezone as django_timezone
from django.utils.timesince import timeuntil

from curriculum.answers import assess_answer
from curriculum.models import Course, Item, Skill
from curriculum.policies.base import Choice, Seen, skill_evidence, skill_mastered
from curriculum.services import graph_for_course
from tracing.practice import LearnerView, learner_reviews, learner_view
from tracing.services import course_model
from tutor.actions import answers_record, next_item_choose
from tutor.models import Interaction, Learner

TOKEN_SALT = "tutor.web.question"
TOKEN_MAX_AGE = 24 * 3600

MASTERED, IN_PROGRESS, LOCKED = "mastered", "in-progress", "locked"

WHY_TEXT = {
    "frontier": "You have the prerequisites of {skill} and it is not mastered yet.",
    "review": "You had mastered {skill}, but it has probably faded since you last practised it.",
    "remediation": "{struggling} has been hard lately, so we go back to {skill}, which it builds on.",
    "confirm": "{skill} looks known ({percent}%), but it counts as mastered only after {needed} answers{harder}; "
    "you have given {answers}.",
}


@dataclass(frozen=True)
class SkillProgress:
    """One skill on the learner's map: P(known) now and whether it is mastered, in progress or locked."""

    id: str
    name: str
    probability: float
    status: str
    waiting_for: tuple[str, ...] = ()
    answers: int = 0
    evidence: str = ""
    """What the status rests on, in words (answers given, and what mastery still needs)."""

    @property
    def percent(self) -> int:
        return round(100 * self.probability)


@dataclass(frozen=True)
class Review:
    """A review the policy has scheduled: the skill, from when, and why (fade or recheck)."""

    id: str
    name: str
    due: datetime
    due_now: bool
    reason: str
    when: str = ""
    """"due now", or how long until it is due ("in 1 day, 3 hours")."""

    @property
    def reason_text(self) -> str:
        return (
            "your memory of it has probably faded by then"
            if self.reason == "fade"
            else "not practised for a while: checked again before you finish"
        )


@dataclass(frozen=True)
class Progress:
    skills: list[SkillProgress]
    threshold: float
    graph: Any
    min_answers: int = 0
    reviews: tuple[Review, ...] = ()

    @property
    def mastered(self) -> int:
        return sum(skill.status == MASTERED for skill in self.skills)

    @property
    def locked(self) -> list[SkillProgress]:
        return [skill for skill in self.skills if skill.status == LOCKED]


def learner_progress(
    *, course: Course, learner: Learner, now: datetime | None = None, view: LearnerView | None = None
) -> Progress:
    """Every skill of the course in prerequisite order with the learner's mastery and status.

    A skill is mastered by the policy's one rule (``curriculum.policies.base.skill_mastered``: P(known) >=
    the course's threshold on at least ``min_answers`` answers, one above the easiest level where
    levels differ); locked while a direct prerequisite does not open it (``skill_opens``: mastered, or
    P(known) at the course's ``unlock_threshold``); otherwise in progress.
    ``view``: the learner's ``learner_view`` where the caller has read it already.
    """
    view = view or learner_view(course=course, learner=learner, now=now)
    mastery, graph, config = view.mastery, view.graph, view.config
    names = dict(Skill.objects.filter(course=course).values_list("external_id", "name"))
    mastered = {skill for skill in graph.skills if view.mastered(skill)}
    opened = {skill for skill in graph.skills if view.opens(skill)}
    skills = []
    for skill in graph.topological_order():
        waiting = tuple(names.get(parent) or parent for parent in graph.parents(skill) if parent not in opened)
        status = MASTERED if skill in mastered else (LOCKED if waiting else IN_PROGRESS)
        evidence = view.evidence.get(skill)
        answers = evidence.answers if evidence else 0
        skills.append(
            SkillProgress(
                skill,
                names.get(skill) or skill,
                mastery.get(skill, 0.0),
                status,
                waiting,
                answers,
                evidence_text(mastery.get(skill, 0.0), evidence, config),
            )
        )
    moment = datetime.fromtimestamp(view.moment, tz=UTC)
    reviews = []
    for due in learner_reviews(course=course, view=view):
        at = datetime.fromtimestamp(due.due_at, tz=UTC)
        due_now = due.due_at <= view.moment
        reviews.append(
            Review(
                due.skill,
                names.get(due.skill) or due.skill,
                at,
                due_now,
                due.reason,
                "due now" if due_now else f"in {timeuntil(at, now=moment)}",
            )
        )
    return Progress(
        skills=skills, threshold=config.threshold, graph=graph, min_answers=config.min_answers, reviews=tuple(reviews)
    )


def evidence_text(probability: float, evidence: Any, config: Any) -> str:
    """What a skill's status rests on, in words: the learner's answers on it against the rule's minimum."""
    answers = evidence.answers if evidence else 0
    given = f"{answers} answer{'s' if answers != 1 else ''}"
    if evidence is None or config.min_answers == 0:
        return given
    missing = []
    if answers < config.min_answers:
        more = config.min_answers - answers
        missing.append(f"{more} more answer{'s' if more != 1 else ''}")
    if not evidence.harder:
        missing.append("one harder question")
    if probability >= config.threshold and missing:
        return f"{given}; needs {' and '.join(missing)} to count as mastered"
    return given


@dataclass(frozen=True)
class Question:
    """The item the policy chose, with a signed token that ties the answer to this very rendering."""

    item: Item | None
    reason: str
    token: str
    skill_name: str = ""
    p_correct: float | None = None
    done: bool = False


def why_text(choice: Choice, names: Mapping[str, str], texts: Mapping[str, str], other: str) -> str:
    """The policy's reason (``choice.why``) told with ``texts`` (``other`` for a reason it lacks): the skill
    and the skill struggled with by name, and for a confirm the evidence still needed. Learners and
    teachers are told the same facts in their own words."""
    evidence = choice.evidence
    return texts.get(choice.why, other).format(
        skill=names.get(choice.skill or "", choice.skill),
        struggling=names.get(choice.struggling or "", choice.struggling),
        percent=round(100 * (choice.mastery or 0.0)),
        needed=choice.min_answers,
        answers=evidence.answers if evidence else 0,
        harder=", one of them above the easiest level" if evidence and not evidence.harder else "",
    )


def reason_text(choice: Any, names: dict[str, str]) -> str:
    """The policy's reason in words."""
    if choice.done:
        return "You have mastered every skill of this course."
    if choice.item is None:
        return (
            "There is no other question to practise right now: the ones you are ready for were just answered, "
            "and a question answered wrongly waits a few minutes before it comes back. Come back shortly."
        )
    text = why_text(choice, names, WHY_TEXT, "This item practises {skill}.")
    if choice.p_correct is not None:
        text += f" We expect about a {round(100 * choice.p_correct)}% chance you get it right"
        text += ", the level where practice teaches most." if 0.55 <= choice.p_correct <= 0.9 else "."
    return text


def goal_choices(*, course: Course) -> list[tuple[str, str]]:
    """The skills a learner may pick as a goal, (id, name) in prerequisite order."""
    names = dict(Skill.objects.filter(course=course).values_list("external_id", "name"))
    return [(skill, names.get(skill) or skill) for skill in graph_for_course(course=course).topological_order()]


def question_next(
    *,
    course: Course,
    learner: Learner,
    goal: str | None = None,
    goals: Sequence[str] | None = None,
    view: LearnerView | None = None,
) -> Question:
    """The next question; with ``goal`` (a skill id of the course) the policy works towards that skill,
    else with ``goals`` (a placed LMS activity's) towards those. ``view``: the learner's ``learner_view``
    where the caller has read it already."""
    choice = next_item_choose(course=course, learner=learner, goals=(goal,) if goal else goals or None, view=view)
    names = dict(Skill.objects.filter(course=course).values_list("external_id", "name"))
    item = Item.objects.filter(course=course, external_id=choice.item).first() if choice.item else None
    token = ""
    if item is not None:
        # The nonce becomes the interaction's client id: submitting the same rendering twice stores one answer.
        token = signing.dumps(
            {
                "item": item.external_id,
                "learner": learner.pk,
                "nonce": uuid.uuid4().hex,
                "issued": django_timezone.now().timestamp(),
            },
            salt=TOKEN_SALT,
        )
    reason = reason_text(choice, names)
    if choice.done and goal:
        reason = f"You have mastered your goal, {names.get(goal) or goal}, and everything it builds on."
    return Question(
        item=item,
        reason=reason,
        token=token,
        skill_name=names.get(choice.skill or "", "") or (choice.skill or ""),
        p_correct=choice.p_correct,
        done=choice.done,
    )


class BadToken(Exception):
    """The answer does not belong to a question this learner was shown (forged, expired or another learner's)."""


@dataclass(frozen=True)
class Feedback:
    item: Item
    response: str
    correct: bool
    reason: str
    duplicate: bool


FEEDBACK_TEXT = {
    "correct": "Correct.",
    "wrong": "Not quite.",
    "unreadable": "That answer could not be read as a number.",
    "not_a_choice": "Please pick one of the choices.",
    "wrong_form": "Right value, but not written in the form the question asks for.",
}


def answer_submit(*, course: Course, learner: Learner, token: str, response: str) -> Feedback:
    """Check the response to the question behind ``token`` and store it (once, however often it is sent)."""
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature as error:
        raise BadToken("this question has expired; here is a fresh one") from error
    if payload.get("learner") != learner.pk:
        raise BadToken("this question was shown to someone else")
    item = Item.objects.filter(course=course, external_id=payload.get("item")).first()
    if item is None:
        raise BadToken("this question no longer exists")
    client_id = f"web-{payload['nonce']}"
    stored = Interaction.objects.filter(course=course, client_id=client_id).first()
    if stored is not None:
        check = assess_answer(
            item.answer, stored.response, choices=item.choices, answer_format=item.answer_format or None
        )
        return Feedback(item, stored.response, stored.correct >= 0.5, check.reason, duplicate=True)
    check = assess_answer(item.answer, response, choices=item.choices, answer_format=item.answer_format or None)
    now = django_timezone.now()
    elapsed = max(now.timestamp() - float(payload.get("issued", now.timestamp())), 0.0)
    result = answers_record(
        course=course,
        rows=[
            {
                "id": client_id,
                "learner": learner.external_id,
                "item": item.external_id,
                "correct": 1 if check.correct else 0,
                "timestamp": now,
                "response": response[:2000],
                "response_time": round(elapsed, 3),
            }
        ],
    )
    return Feedback(item, response, check.correct, check.reason, duplicate=not result.created)


SITTING_GAP = 30 * 60
"""Seconds without an answer that end a sitting: the summary covers the answers since the last such pause."""


@dataclass(frozen=True)
class SkillMove:
    """How one skill practised in the sitting moved: P(known) and mastered before and after."""

    id: str
    name: str
    answers: int
    correct: int
    before: float
    after: float
    mastered_before: bool
    mastered_after: bool

    @property
    def before_percent(self) -> int:
        return round(100 * self.before)

    @property
    def after_percent(self) -> int:
        return round(100 * self.after)


@dataclass(frozen=True)
class SittingSummary:
    """What the learner did in this sitting, what moved, and what comes next."""

    answers: int
    correct: int
    started: datetime | None
    moves: list[SkillMove]
    next_skill: str
    next_reason: str
    done: bool
    reviews: tuple[Review, ...]


def sitting_summary(
    *,
    course: Course,
    learner: Learner,
    now: datetime | None = None,
    goal: str | None = None,
    goals: Sequence[str] | None = None,
) -> SittingSummary:
    """The summary shown when the learner stops: this sitting's answers (since the last pause of
    ``SITTING_GAP``), each practised skill's mastery before the sitting and now, and the next step (towards
    ``goal``, as on the practice page)."""
    progress = learner_progress(course=course, learner=learner, now=now)
    rows = list(
        Interaction.objects.filter(learner=learner)
        .order_by("timestamp", "id")
        .values_list("item__external_id", "correct", "timestamp")
    )
    start = len(rows)
    while start > 0 and (start == len(rows) or (rows[start][2] - rows[start - 1][2]).total_seconds() < SITTING_GAP):
        start -= 1
    earlier, sitting = rows[:start], rows[start:]
    model = course_model(course)
    estimator = model.estimator
    state = estimator.initial_state()
    seen: dict[str, Seen] = {}
    for item, correct, moment in earlier:
        if item in model.item_index:
            state = estimator.update(state, item=model.item_index[item], correct=float(correct), at=moment.timestamp())
        record = seen.get(item)
        seen[item] = Seen((record.answers if record else 0) + 1, moment.timestamp())
    moment = sitting[0][2].timestamp() if sitting else (now or django_timezone.now()).timestamp()
    before_values = np.asarray(estimator.mastery_at(state, moment), dtype=np.float64)
    view = learner_view(course=course, learner=learner, now=now)
    evidence_before = skill_evidence(view.items, seen)
    skills_of = {item.id: item.skills for item in view.items}
    counts: dict[str, list[int]] = {}
    for item, correct, _ in sitting:
        for skill in skills_of.get(item, ()):
            count = counts.setdefault(skill, [0, 0])
            count[0] += 1
            count[1] += correct >= 0.5
    names = {skill.id: skill.name for skill in progress.skills}
    after = {skill.id: skill for skill in progress.skills}
    moves = []
    for skill, (answers, correct) in counts.items():
        if skill not in model.skill_index or skill not in after:
            continue
        before = float(before_values[model.skill_index[skill]])
        moves.append(
            SkillMove(
                skill,
                names.get(skill, skill),
                answers,
                correct,
                before,
                after[skill].probability,
                skill_mastered(before, evidence_before.get(skill), view.config),
                after[skill].status == MASTERED,
            )
        )
    moves.sort(key=lambda move: move.before - move.after)
    question = question_next(course=course, learner=learner, goal=goal, goals=goals)
    return SittingSummary(
        answers=len(sitting),
        correct=sum(correct >= 0.5 for _, correct, _ in sitting),
        started=sitting[0][2] if sitting else None,
        moves=moves,
        next_skill=question.skill_name,
        next_reason=question.reason,
        done=question.done,
        reviews=progress.reviews,
    )
