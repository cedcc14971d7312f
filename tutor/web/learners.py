"""Read-side queries for the teacher's pages: a class's learners with their flags, and one learner's
report (history, mastery over time, traits, what comes next and why). Plain data out, no HTML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone as django_timezone

from core.sql import moment, rows_in
from curriculum.models import Course, Skill
from curriculum.policies.base import REMEDIATION, Choice
from tracing.practice import MasteryHistory, mastery_history
from tracing.services import course_model, learner_outlook, learner_state
from tutor.actions import next_item_choose
from tutor.activity import activity_mastery_pending
from tutor.lti.classes import ROSTER_PAGE, RosterKey, TeachingScope, class_roster, roster_key
from tutor.lti.models import ClassMember
from tutor.models import Interaction, Learner, LearnerActivity
from tutor.web.dashboard import Flag
from tutor.web.practice import why_text

PROGRESS_EPSILON = 0.01
"""Mean mastery must rise by more than this over the window to count as progress."""


WHY_TEXT = {
    "frontier": "{skill} is next: its prerequisites are mastered and it is not yet.",
    "review": "{skill} was mastered, but has probably faded since it was last practised.",
    "remediation": "{struggling} has been hard lately, so the tutor goes back to {skill}, which it builds on.",
    "confirm": "{skill} looks known ({percent}%), but counts as mastered only after {needed} answers{harder}; "
    "{answers} given so far.",
}
"""The policy's reason for the next item, told to the teacher (the learner page says it to the learner)."""


def choice_text(choice: Choice, names: dict[str, str]) -> str:
    """What comes next for the learner and why, in words."""
    if choice.done:
        return "Every goal skill of the course is mastered."
    if choice.item is None:
        return (
            "Nothing to practise right now: the items this learner is ready for were just answered, and one "
            "answered wrongly waits a few minutes before it comes back."
        )
    text = why_text(choice, names, WHY_TEXT, "The item practises {skill}.")
    if choice.p_correct is not None:
        text += f" The model expects about a {round(100 * choice.p_correct)}% chance of a right answer."
    return text


@dataclass(frozen=True)
class FlagRules:
    no_progress_answers: int
    quiet_days: int
    stuck_answers: int

    @classmethod
    def from_settings(cls) -> FlagRules:
        return cls(
            settings.TUTOR_FLAG_NO_PROGRESS_ANSWERS, settings.TUTOR_FLAG_QUIET_DAYS, settings.TUTOR_FLAG_STUCK_ANSWERS
        )


def learner_flags(
    *,
    rules: FlagRules,
    mean_mastery: Sequence[float],
    last_answer_at: datetime | None,
    now: datetime,
    why: str | None = None,
    struggling: Sequence[float] = (),
) -> list[Flag]:
    """What a teacher should look at for one learner (pure).

    ``mean_mastery`` is the learner's mean P(known) after each answer, oldest first; ``why`` the
    policy's reason for their next item, ``struggling`` the P(known) after each answer of the skill
    that sent them to remediation. Stuck in remediation: sent there, and that skill has not risen over
    the last ``stuck_answers`` answers. No progress: mean mastery not higher than ``no_progress_answers``
    answers ago. Gone quiet: no answer for ``quiet_days`` days.
    """
    flags = []
    window = rules.stuck_answers
    if why == REMEDIATION and len(struggling) > window and struggling[-1] <= struggling[-1 - window] + PROGRESS_EPSILON:
        flags.append(
            Flag(
                "stuck in remediation",
                f"sent back to a prerequisite, and the skill it struggles with "
                f"has not risen over the last {window} answers",
            )
        )
    window = rules.no_progress_answers
    if len(mean_mastery) > window and mean_mastery[-1] <= mean_mastery[-1 - window] + PROGRESS_EPSILON:
        flags.append(
            Flag(
                "no progress",
                f"mean mastery {100 * mean_mastery[-1]:.0f}% is no higher than "
                f"{window} answers ago ({100 * mean_mastery[-1 - window]:.0f}%)",
            )
        )
    if last_answer_at is not None and now - last_answer_at >= timedelta(days=rules.quiet_days):
        flags.append(
            Flag("gone quiet", f"no answer for {(now - last_answer_at).days} days (flagged after {rules.quiet_days})")
        )
    return flags


def _last_answers(course: Course, learner_pks: Sequence[int]) -> dict[int, tuple[int, datetime | None]]:
    """learner pk -> (answers, when last answered), from the learners' kept sums (``tutor.activity``);
    stored time where the course's timestamps are steps."""
    column = "last_timestamp" if course.has_clock else "last_stored"
    return {
        learner: (answers, moment(last))
        for learner, answers, last in rows_in(
            f"SELECT learner_id, answers, {column} FROM {LearnerActivity._meta.db_table} "
            "WHERE learner_id IN ({marks})",
            [],
            list(learner_pks),
        )
    }


@dataclass
class LearnerReport:
    """Everything the teacher's learner page shows of one learner."""

    learner: Learner
    name: str
    classes: list[str]
    answers: int
    last_answer_at: datetime | None
    choice: Choice
    skill_names: dict[str, str]
    history: MasteryHistory
    traits: dict[str, Any]
    flags: list[Flag]
    traits_words: list[str] = field(default_factory=list)
    traits_source: str | None = None
    """``tracing.services.learner_traits_view``'s: learner, fit or population."""
    traits_answers: int = 0
    mastery_pending: bool = False
    """Answers a file import stored are not in the mastery shown yet (``tutor.activity``)."""
    recent: list[Interaction] = field(default_factory=list)
    """The latest answers, newest first."""


def _choice_and_flags(
    course: Course, learner: Learner, history: MasteryHistory, last: datetime | None, now: datetime, rules: FlagRules
) -> tuple[Choice, list[Flag]]:
    choice = next_item_choose(course=course, learner=learner, now=now)
    struggling: Sequence[float] = ()
    if choice.why == REMEDIATION and choice.struggling in history.skills:
        struggling = history.mastery[:, history.skills.index(choice.struggling)].tolist()
    flags = learner_flags(
        rules=rules,
        mean_mastery=history.mean().tolist(),
        last_answer_at=last,
        now=now,
        why=choice.why,
        struggling=struggling,
    )
    return choice, flags


def learner_report(
    *, scope: TeachingScope, learner: Learner, recent: int = 50, now: datetime | None = None
) -> LearnerReport:
    course, now = scope.course, now or django_timezone.now()
    model = course_model(course)
    history = mastery_history(course=course, learner=learner, model=model)
    answers, last = _last_answers(course, [learner.pk]).get(learner.pk, (0, None))
    choice, flags = _choice_and_flags(course, learner, history, last, now, FlagRules.from_settings())
    members = list(
        ClassMember.objects.filter(learner=learner, course_class__in=scope.classes).select_related("course_class")
    )
    outlook = learner_outlook(learner=learner, model=model, state=learner_state(learner=learner, model=model))
    return LearnerReport(
        learner=learner,
        name=next((member.name for member in members if member.name), ""),
        classes=[member.course_class.name for member in members],
        answers=answers,
        last_answer_at=last,
        choice=choice,
        skill_names={
            skill: name or skill
            for skill, name in Skill.objects.filter(course=course).values_list("external_id", "name")
        },
        history=history,
        traits=outlook["traits"] or {},
        flags=flags,
        traits_words=outlook["traits_words"],
        traits_source=outlook["traits_source"],
        traits_answers=outlook["traits_answers"],
        mastery_pending=activity_mastery_pending(learner_pk=learner.pk),
        recent=list(
            Interaction.objects.filter(learner=learner)
            .select_related("item")
            .prefetch_related("item__skills")
            .order_by("-timestamp", "-id")[:recent]
        ),
    )


def roster_rows(
    *,
    scope: TeachingScope,
    course_class: Any = None,
    after: RosterKey | None = None,
    limit: int = ROSTER_PAGE,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One page of the class's learners (of every learner the scope shows without a class), those not
    started too, after ``after`` in roster order: each with answers, last answer, mean mastery and flags
    (the learners' histories replayed: one page at a time)."""
    course, now = scope.course, now or django_timezone.now()
    rows = class_roster(scope=scope, course_class=course_class, after=after, limit=limit)
    started = [row["learner"].pk for row in rows if row["learner"] is not None]
    counts = _last_answers(course, started)
    rules, model = FlagRules.from_settings(), course_model(course) if started else None
    for row in rows:
        learner = row["learner"]
        answers, last = counts.get(learner.pk, (0, None)) if learner is not None else (0, None)
        row.update(answers=answers, last_answer_at=last, mean=None, flags=[], why=None)
        if learner is None or not answers:
            continue
        learner.course = course  # the page's course object: no query per learner for it
        history = mastery_history(course=course, learner=learner, model=model)
        choice, row["flags"] = _choice_and_flags(course, learner, history, last, now, rules)
        row["mean"], row["why"] = float(history.mean()[-1]) if len(history.at) else None, choice.why
    return rows


def roster_next(rows: list[dict[str, Any]], limit: int = ROSTER_PAGE) -> RosterKey | None:
    """Where the page after ``rows`` starts, if a full page suggests there is one."""
    return roster_key(rows[-1]) if len(rows) >= limit else None


def mean_series(history: MasteryHistory, *, points: int = 200) -> list[float]:
    """Mean mastery after each answer, thinned to at most ``points`` (the last one kept)."""
    mean = history.mean()
    if len(mean) <= points:
        return mean.tolist()
    picks = np.unique(np.linspace(0, len(mean) - 1, points).round().astype(int))
    return mean[picks].tolist()
