"""Simulated learners whose true knowledge follows a known model over a course's graph (pure).

The ground truth the policy benchmark and its tests tutor against:

- a learner knows each skill or not (binary, hidden from the tutor);
- a skill can be learned only while all its prerequisites are known: each
  answer on an item of the skill teaches it with probability
  ``learn = clip(skill_rate * learner_rate)``;
- before tutoring a learner already knows some skills: walking the graph in
  topological order, a skill whose prerequisites are known is known with the
  learner's ``prior`` probability;
- known skills are forgotten in continuous time with hazard
  ``forget_rate / (1 + practice)`` per day, where ``practice`` counts the
  learner's correct answers on the skill since learning it (practice makes
  memory last);
- an answer is correct with probability ``1 - slip`` when every skill of the
  item is known, else ``guess`` (``1 / len(choices)`` for multiple choice,
  0.1 for a typed answer).

Learner traits vary: ``learner_rate`` is log-normal around 1 (sd 0.4 in log), ``forget_rate``
log-normal around ``forget_median``, ``prior`` Beta(1.5, 4). The clock moves
a minute per answer and a day after every ``session_length`` answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curriculum.graph import PrerequisiteGraph

SECONDS_PER_ANSWER = 60.0
DAY = 86_400.0


@dataclass(frozen=True)
class SimulatedCourse:
    """The true model of a course: skill order, prerequisites, items and their guess/slip."""

    graph: PrerequisiteGraph
    item_ids: tuple[str, ...]
    item_skills: tuple[tuple[int, ...], ...]
    """Per item, the indices (into ``graph.skills``) of its skills."""
    guess: np.ndarray
    """(n_items,) P(correct | some skill of the item unknown)."""
    slip: np.ndarray
    """(n_items,) P(wrong | every skill of the item known)."""
    skill_rate: np.ndarray
    """(n_skills,) base P(learn) per answer for a learner of rate 1."""
    parents: tuple[tuple[int, ...], ...] = field(repr=False, default=())

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, seed: int = 0, learn_median: float = 0.3) -> SimulatedCourse:
        """Read a curriculum document; skill rates vary around ``learn_median`` (fixed by ``seed``)."""
        skills = [skill["id"] for skill in document["skills"]]
        graph = PrerequisiteGraph(skills, [(edge["from"], edge["to"]) for edge in document.get("prerequisites", [])])
        rng = np.random.default_rng([seed, 1])
        items = document["items"]
        guess = np.array([1.0 / len(item["choices"]) if item.get("choices") else 0.1 for item in items])
        difficulty = np.array([float(item.get("difficulty") or 2) for item in items])
        slip = np.clip(0.04 + 0.02 * difficulty, 0.02, 0.2)
        skill_rate = learn_median * np.exp(rng.normal(0.0, 0.3, len(skills)))
        return cls(
            graph=graph,
            item_ids=tuple(item["id"] for item in items),
            item_skills=tuple(tuple(graph.index[skill] for skill in item["skills"]) for item in items),
            guess=guess,
            slip=slip,
            skill_rate=skill_rate,
            parents=tuple(tuple(graph.index[parent] for parent in graph.parents(skill)) for skill in skills),
        )

    @property
    def n_skills(self) -> int:
        return len(self.graph.skills)

    def skill_items(self) -> list[list[int]]:
        """Per skill, the indices of the items that test it."""
        out: list[list[int]] = [[] for _ in range(self.n_skills)]
        for item, skills in enumerate(self.item_skills):
            for skill in skills:
                out[skill].append(item)
        return out


class SimulatedLearner:
    """One learner's hidden knowledge; ``answer`` draws the outcome and applies learning."""

    def __init__(
        self, course: SimulatedCourse, *, seed: int, forget_median: float = 0.02, session_length: int = 30
    ) -> None:
        self.course = course
        traits = np.random.default_rng([seed, 2])
        self.learner_rate = float(np.exp(traits.normal(0.0, 0.4)))
        self.forget_rate = float(forget_median * np.exp(traits.normal(0.0, 0.7)))
        self.prior = float(traits.beta(1.5, 4.0))
        self.learn = np.clip(course.skill_rate * self.learner_rate, 0.05, 0.9)
        self.known = np.zeros(course.n_skills, dtype=bool)
        for skill in (course.graph.index[name] for name in course.graph.topological_order()):
            if all(self.known[parent] for parent in course.parents[skill]):
                self.known[skill] = traits.random() < self.prior
        self.practice = np.zeros(course.n_skills)
        self.session_length = session_length
        self.answers = 0
        self.clock = 0.0
        self.offset = 0.0
        self.rng = np.random.default_rng([seed, 3])

    def time_of(self, answer: int) -> float:
        """Seconds from the start at which the learner gives answer number ``answer`` (0-based)."""
        return self.offset + answer * SECONDS_PER_ANSWER + (answer // self.session_length) * DAY

    def rest(self, days: float) -> None:
        """Come back ``days`` later than planned (every later answer moves by as much)."""
        self.offset += days * DAY

    def _forget_until(self, moment: float) -> None:
        elapsed_days = (moment - self.clock) / DAY
        if elapsed_days > 0:
            hazard = self.forget_rate / (1.0 + self.practice)
            lost = self.known & (self.rng.random(len(self.known)) < 1.0 - np.exp(-hazard * elapsed_days))
            self.known &= ~lost
            self.practice[lost] = 0.0
            self.clock = moment

    def answer(self, item: int) -> tuple[float, float]:
        """Answer ``item`` (index into the course's items) now: (correct 0/1, time in seconds)."""
        moment = self.time_of(self.answers)
        self._forget_until(moment)
        skills = self.course.item_skills[item]
        knows = all(self.known[skill] for skill in skills)
        probability = 1.0 - self.course.slip[item] if knows else self.course.guess[item]
        correct = float(self.rng.random() < probability)
        for skill in skills:
            if self.known[skill]:
                self.practice[skill] += correct
            elif all(self.known[parent] for parent in self.course.parents[skill]):
                if self.rng.random() < self.learn[skill]:
                    self.known[skill] = True
        self.answers += 1
        return correct, moment

    def knows_all(self, skills: Sequence[int]) -> bool:
        return bool(all(self.known[skill] for skill in skills))

    def post_test(self, skills: Sequence[int]) -> float:
        """Fraction of ``skills`` known now (a post-test of one item per skill, without guessing or slips)."""
        self._forget_until(self.time_of(self.answers))
        return float(np.mean([self.known[skill] for skill in skills]))


def random_order(course: SimulatedCourse, *, seed: int) -> Any:
    """A policy that draws items uniformly, never the same item twice in a row."""
    rng = np.random.default_rng([seed, 4])
    last = -1

    def choose(step: int) -> int:
        nonlocal last
        while True:
            item = int(rng.integers(len(course.item_ids)))
            if item != last:
                last = item
                return item

    return choose


def topological_order(course: SimulatedCourse) -> list[int]:
    """The textbook sequence: items grouped by skill in topological order, document order inside; repeated."""
    rank = {course.graph.index[name]: position for position, name in enumerate(course.graph.topological_order())}
    return sorted(
        range(len(course.item_ids)), key=lambda item: (max(rank[skill] for skill in course.item_skills[item]), item)
    )
