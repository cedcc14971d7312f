"""What the course's active model says of one learner's practice: the learner view the policy, the
learner page and the API read, the reviews the policy schedules, and the policy's look-ahead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.utils import timezone as django_timezone

from curriculum.graph import PrerequisiteGraph
from curriculum.models import Course, Item
from curriculum.policies import get_policy
from curriculum.policies.base import (
    Answer,
    Evidence,
    ItemSpec,
    PolicyConfig,
    ReviewDue,
    Seen,
    item_levels,
    skill_evidence,
    skill_mastered,
    skill_opens,
)
from curriculum.services import course_policy, graph_for_course
from tracing.selectors import learner_history
from tracing.services import CourseModel, course_model, learner_state
from tutor.hot_queries import learner_exposure
from tutor.models import Learner

HISTORY_LENGTH = 50
"""Answers read back for the policy's struggle and repetition checks."""


def policy_graph(*, course: Course, model: CourseModel) -> PrerequisiteGraph:
    """The graph the policy reads (``graph_for_course`` with its defaults), built once per course model:
    the model's cache key covers the prerequisite edges, so a changed edge gives a fresh graph."""
    return model.memo("policy_graph", lambda: graph_for_course(course=course))


@dataclass
class LearnerView:
    """What the policy, the learner page and the API read of one learner at one moment.

    ``mastery`` P(known) per skill now (after forgetting), ``mastery_before`` at the last answer,
    ``seen`` the learner's record per item, ``history`` the last answers (oldest first),
    ``last_practice`` per skill when last answered (epoch seconds), ``evidence`` per skill.
    """

    model: Any
    state: Any
    moment: float
    now_mastery: np.ndarray
    mastery: dict[str, float]
    mastery_before: dict[str, float]
    items: list[ItemSpec]
    seen: dict[str, Seen]
    history: list[Answer]
    last_practice: dict[str, float]
    evidence: dict[str, Evidence]
    graph: PrerequisiteGraph
    config: PolicyConfig

    def mastered(self, skill: str) -> bool:
        """The one mastery rule (``curriculum.policies.base.skill_mastered``) for ``skill`` now."""
        return skill_mastered(self.mastery.get(skill, 0.0), self.evidence.get(skill), self.config)

    def opens(self, skill: str) -> bool:
        """Whether what builds on ``skill`` may be practised now (``curriculum.policies.base.skill_opens``)."""
        return skill_opens(self.mastery.get(skill, 0.0), self.evidence.get(skill), self.config)


def learner_view(*, course: Course, learner: Learner, now: datetime | None = None) -> LearnerView:
    """Read ``learner``'s state under the course's active model, and their practice, once.

    ``learner`` may be unsaved (no answers yet): the model's prior then stands for them.
    """
    model = course_model(course)
    estimator = model.estimator
    state = learner_state(learner=learner, model=model)
    moment = (now or django_timezone.now()).timestamp()
    now_mastery = np.asarray(estimator.mastery_at(state, moment), dtype=np.float64)
    mastery = {skill: float(now_mastery[index]) for skill, index in model.skill_index.items()}
    mastery_before = {skill: float(state.mastery[index]) for skill, index in model.skill_index.items()}
    items, _, _ = policy_items(model=model, course=course)
    # Item primary keys, no joins: the model's vocabulary names the items and their skills.
    item_of_pk, skills_of_pk = model.memo("item_of_pk", lambda: _items_by_pk(model, items))
    recent, record = learner_exposure(learner_pk=learner.pk, limit=HISTORY_LENGTH)
    history = [Answer(item_of_pk[pk], correct) for pk, correct in recent if pk in item_of_pk]
    seen = {item_of_pk[pk]: Seen(count, last, wrong) for pk, (count, last, wrong) in record.items() if pk in item_of_pk}
    last_practice: dict[str, float] = {}
    for pk, (_, last, _) in record.items():
        for skill in skills_of_pk.get(pk, ()):
            last_practice[skill] = max(last_practice.get(skill, 0.0), last)
    return LearnerView(
        model=model,
        state=state,
        moment=moment,
        now_mastery=now_mastery,
        mastery=mastery,
        mastery_before=mastery_before,
        items=items,
        seen=seen,
        history=history,
        last_practice=last_practice,
        evidence=skill_evidence(items, seen, levels=model.memo("item_levels", lambda: item_levels(items))),
        graph=policy_graph(course=course, model=model),
        config=course_policy(course=course),
    )


FADE_PROBES = (1 / 24, 3 / 24, 6 / 24, 12 / 24, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60)
"""Days ahead at which a model's forgetting is read to find when a skill fades (then refined by bisection)."""


def learner_reviews(*, course: Course, view: LearnerView) -> list[ReviewDue]:
    """The reviews the course's policy schedules for the learner of ``view`` (its ``reviews``),
    soonest first: when each skill mastered at its last practice fades below the threshold under the
    model's forgetting (looked for up to 60 days ahead, to the minute) or is due its recheck."""
    estimator, config = view.model.estimator, view.config
    index = view.model.skill_index
    watched = [skill for skill, value in view.mastery_before.items() if value >= config.threshold and skill in index]
    fade_at: dict[str, float | None] = {}
    if watched and config.review:
        columns = np.array([index[skill] for skill in watched], dtype=np.int64)

        def below(at: float) -> np.ndarray:
            return np.asarray(estimator.mastery_at(view.state, at), dtype=np.float64)[columns] < config.threshold

        # Without practice P(known) only falls, so the first probe below the threshold brackets the moment.
        probes = [view.moment] + [view.moment + days * 86_400.0 for days in FADE_PROBES]
        crossed = np.array([below(at) for at in probes])  # (probes, watched skills)
        for position, skill in enumerate(watched):
            hits = np.flatnonzero(crossed[:, position])
            if not len(hits):
                fade_at[skill] = None
                continue
            if hits[0] == 0:
                fade_at[skill] = view.moment  # faded already: due now
                continue
            start, end = probes[hits[0] - 1], probes[hits[0]]
            while end - start > 60.0:
                middle = (start + end) / 2
                start, end = (start, middle) if below(middle)[position] else (middle, end)
            fade_at[skill] = end
    return get_policy(config.kind).reviews(
        mastery_before=view.mastery_before,
        graph=view.graph,
        items=view.items,
        config=config,
        last_practice=view.last_practice,
        fade_at=fade_at,
    )


def policy_items(*, model: CourseModel, course: Course) -> tuple[list[ItemSpec], list[str], np.ndarray]:
    """The course's items as the policy sees them, and those the model knows with their model indices
    (kept with the course model)."""
    return model.memo("policy_items", lambda: _policy_items(model, course))


def _policy_items(model: CourseModel, course: Course) -> tuple[list[ItemSpec], list[str], np.ndarray]:
    vocabulary = model.vocabulary
    difficulty = dict(Item.objects.filter(course=course).values_list("id", "difficulty"))
    items = [
        ItemSpec(item_id, tuple(vocabulary.skill_ids[column] for column in np.flatnonzero(row)), difficulty.get(pk))
        for item_id, pk, row in zip(vocabulary.item_ids, vocabulary.item_pk, vocabulary.q_matrix)
    ]
    known = [item for item in vocabulary.item_ids if item in model.item_index]
    return items, known, np.array([model.item_index[item] for item in known], dtype=np.int64)


def _items_by_pk(model: CourseModel, items: Sequence[ItemSpec]) -> tuple[dict[int, str], dict[int, tuple[str, ...]]]:
    """Item primary key -> external id, and -> the item's skills."""
    pks = model.vocabulary.item_pk
    return ({pk: item.id for pk, item in zip(pks, items)}, {pk: item.skills for pk, item in zip(pks, items)})


def expected_gain(
    estimator: Any,
    state: Any,
    item_index: Mapping[str, int],
    skill_index: Mapping[str, int],
    items_of_skill: Mapping[str, Sequence[ItemSpec]],
    candidates: Mapping[str, str],
    p_correct: Mapping[str, float],
    now_mastery: np.ndarray,
    moment: float,
) -> dict[str, float]:
    """Per item of a candidate skill: E[mastery of its skills after answering it] - mastery now, the
    model's one-step look-ahead (``estimator.update_each`` after a right and after a wrong answer,
    weighted by P(correct)). ``now_mastery`` (skills,) is P(known) now in the model's skill order."""
    chosen: dict[str, list[int]] = {}
    for skill in candidates:
        for item in items_of_skill.get(skill, ()):
            if item.id in chosen or item.id not in item_index:
                continue
            columns = [skill_index[other] for other in item.skills if other in skill_index]
            if columns:
                chosen[item.id] = columns
    if not chosen:
        return {}
    indices = np.array([item_index[item] for item in chosen], dtype=np.int64)
    after_correct = estimator.update_each(state, indices, correct=1.0, at=moment)
    after_wrong = estimator.update_each(state, indices, correct=0.0, at=moment)
    # One array expression over every (item, skill) pair, summed per item: a loop of small numpy
    # operations per item cost more than the look-ahead itself.
    rows = np.repeat(np.arange(len(chosen)), [len(each) for each in chosen.values()])
    pairs = np.fromiter((column for each in chosen.values() for column in each), dtype=np.int64, count=len(rows))
    probability = np.array([p_correct[item] for item in chosen], dtype=np.float64)[rows]
    expected = probability * after_correct[rows, pairs] + (1.0 - probability) * after_wrong[rows, pairs]
    gain = np.bincount(rows, weights=expected - now_mastery[pairs], minlength=len(chosen))
    return dict(zip(chosen, gain.tolist()))


@dataclass(frozen=True)
class MasteryHistory:
    """The learner's mastery after each answer under the course's active model, oldest first:
    ``at`` (answers,) epoch seconds, ``mastery`` (answers, skills) P(known) at that answer, columns in
    ``skills`` order. Answers on items the model does not know leave the row as it was."""

    at: np.ndarray
    mastery: np.ndarray
    skills: tuple[str, ...]

    def mean(self) -> np.ndarray:
        """(answers,) mean P(known) over the skills after each answer."""
        return self.mastery.mean(axis=1) if self.mastery.size else np.zeros(len(self.at))


def mastery_history(*, course: Course, learner: Learner, model: CourseModel | None = None) -> MasteryHistory:
    """Replay ``learner``'s answers through the course's active model, keeping the state after each
    one (the stored mastery keeps only the last): what the teacher's learner page draws over time."""
    model = model or course_model(course)
    estimator = model.estimator
    history = learner_history(learner=learner, vocabulary=model.vocabulary)
    skills = tuple(estimator.skill_ids)
    state = estimator.initial_state()
    rows = np.zeros((history.n_rows, len(skills)), dtype=np.float64)
    for row in range(history.n_rows):
        index = model.item_index.get(history.item_ids[history.item[row]])
        if index is not None:
            state = estimator.update(
                state, item=index, correct=float(history.correct[row]), at=float(history.timestamp[row])
            )
        rows[row] = np.asarray(state.mastery, dtype=np.float64)
    return MasteryHistory(
        at=np.asarray(history.timestamp[: history.n_rows], dtype=np.float64), mastery=rows, skills=skills
    )
