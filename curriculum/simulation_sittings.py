"""A second simulated learner, built to differ from ``curriculum.simulation`` where a policy could overfit (pure).

The policy bench checks the product against learners whose learning and forgetting follow a model it
was not tuned on. Here, unlike ``curriculum.simulation``:

- learning is gated *softly* by prerequisites: an answer on an item of skill k teaches it with
  probability ``learn_k * learner_rate * prod_parents (1 if known else leak)``, with ``leak`` = 0.15,
  so a skill can (rarely) be learned before its prerequisites; a wrong answer followed by the worked
  answer teaches 1.5 times as much as a right one (feedback), and harder items teach more
  (``1 + 0.25 * (difficulty - 2)``);
- forgetting happens only *between sittings*, not by the minute: at the end of each sitting every
  known skill is lost with probability ``forget * exp(-0.6 * spaced)``, where ``spaced`` counts the
  earlier sittings in which the learner answered the skill correctly (spacing, not massed practice,
  makes memory last);
- every item has its own guess and slip: guess ~ Beta around ``1 / choices`` (typed: 0.05) and slip
  Beta(2, 30) raised with difficulty, both drawn once per item from the course seed;
- sittings last 15 to 45 answers (a learner trait) and are 1 to 4 days apart, drawn per sitting;
- prior knowledge: each skill whose prerequisites are known is known with the learner's prior
  (Beta(2, 3)), walking the graph in topological order, as a class that has seen some of it.

The interface matches ``curriculum.simulation.SimulatedLearner`` (``answer``, ``time_of``, ``rest``,
``knows_all``, ``post_test``, ``known``) so the bench drives either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curriculum.simulation import DAY, SECONDS_PER_ANSWER, SimulatedCourse

LEAK = 0.15
"""How much an unknown prerequisite still lets a skill be learned (1: no gating, 0: hard gating)."""


@dataclass(frozen=True)
class SittingsCourse:
    """Per-item guess, slip and difficulty of the second simulator, over a ``SimulatedCourse``'s graph."""

    base: SimulatedCourse
    guess: np.ndarray
    slip: np.ndarray
    difficulty: np.ndarray

    @classmethod
    def from_document(cls, document: dict, *, seed: int = 0) -> SittingsCourse:
        base = SimulatedCourse.from_document(document, seed=seed)
        rng = np.random.default_rng([seed, 11])
        items = document["items"]
        difficulty = np.array([float(item.get("difficulty") or 2) for item in items])
        chance = np.array([1.0 / len(item["choices"]) if item.get("choices") else 0.05 for item in items])
        guess = np.clip(rng.beta(20 * chance + 0.5, 20 * (1 - chance) + 0.5), 0.01, 0.5)
        slip = np.clip(rng.beta(2.0, 30.0, len(items)) + 0.03 * (difficulty - 1), 0.01, 0.3)
        return cls(base=base, guess=guess, slip=slip, difficulty=difficulty)

    @property
    def graph(self):  # the bench reads the graph and items through the course it was given
        return self.base.graph

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.base.item_ids

    @property
    def item_skills(self) -> tuple[tuple[int, ...], ...]:
        return self.base.item_skills

    @property
    def n_skills(self) -> int:
        return self.base.n_skills

    @property
    def parents(self) -> tuple[tuple[int, ...], ...]:
        return self.base.parents

    def skill_items(self) -> list[list[int]]:
        return self.base.skill_items()


class SittingsLearner:
    """One learner of the second simulator: hidden knowledge, sittings and forgetting between them."""

    def __init__(self, course: SittingsCourse, *, seed: int, forget_median: float = 0.12) -> None:
        self.course = course
        traits = np.random.default_rng([seed, 12])
        self.learner_rate = float(np.exp(traits.normal(0.0, 0.5)))
        self.forget = float(np.clip(forget_median * np.exp(traits.normal(0.0, 0.6)), 0.0, 0.9))
        self.prior = float(traits.beta(2.0, 3.0))
        self.sitting_length = int(traits.integers(15, 46))
        base = course.base
        self.learn = np.clip(base.skill_rate * self.learner_rate, 0.03, 0.85)
        self.known = np.zeros(base.n_skills, dtype=bool)
        for skill in (base.graph.index[name] for name in base.graph.topological_order()):
            if all(self.known[parent] for parent in base.parents[skill]):
                self.known[skill] = traits.random() < self.prior
        self.spaced = np.zeros(base.n_skills)
        self.right_this_sitting = np.zeros(base.n_skills, dtype=bool)
        self.rng = np.random.default_rng([seed, 13])
        self.gaps = np.random.default_rng([seed, 14])
        self.answers = 0
        self.sitting_starts = [0.0]  # start time (seconds) of each sitting
        self.sitting_index = 0
        self.offset = 0.0

    def _sitting_of(self, answer: int) -> int:
        return answer // self.sitting_length

    def time_of(self, answer: int) -> float:
        """Seconds from the start at which the learner gives answer number ``answer`` (0-based)."""
        sitting = self._sitting_of(answer)
        while len(self.sitting_starts) <= sitting:
            previous_end = self.sitting_starts[-1] + self.sitting_length * SECONDS_PER_ANSWER
            self.sitting_starts.append(previous_end + float(self.gaps.uniform(1.0, 4.0)) * DAY)
        return self.offset + self.sitting_starts[sitting] + (answer % self.sitting_length) * SECONDS_PER_ANSWER

    def rest(self, days: float) -> None:
        """Come back ``days`` later than planned; a rest of an hour or more ends the sitting."""
        self.offset += days * DAY
        if days >= 1 / 24:
            self._end_sitting()

    def _end_sitting(self) -> None:
        lost = self.known & (self.rng.random(len(self.known)) < self.forget * np.exp(-0.6 * self.spaced))
        self.spaced[self.right_this_sitting] += 1
        self.known &= ~lost
        self.spaced[lost] = 0.0
        self.right_this_sitting[:] = False

    def _advance_to(self, answer: int) -> None:
        sitting = self._sitting_of(answer)
        while self.sitting_index < sitting:
            self._end_sitting()
            self.sitting_index += 1

    def answer(self, item: int) -> tuple[float, float]:
        """Answer ``item`` now: (correct 0/1, time in seconds)."""
        moment = self.time_of(self.answers)
        self._advance_to(self.answers)
        course, base = self.course, self.course.base
        skills = base.item_skills[item]
        knows = all(self.known[skill] for skill in skills)
        probability = 1.0 - course.slip[item] if knows else course.guess[item]
        correct = float(self.rng.random() < probability)
        boost = (1.5 if not correct else 1.0) * (1.0 + 0.25 * (course.difficulty[item] - 2.0))
        for skill in skills:
            if self.known[skill]:
                self.right_this_sitting[skill] |= bool(correct)
                continue
            gate = float(np.prod([1.0 if self.known[parent] else LEAK for parent in base.parents[skill]]))
            if self.rng.random() < min(self.learn[skill] * boost * gate, 0.95):
                self.known[skill] = True
        self.answers += 1
        return correct, moment

    def knows_all(self, skills: Sequence[int]) -> bool:
        return bool(all(self.known[skill] for skill in skills))

    def post_test(self, skills: Sequence[int]) -> float:
        """Fraction of ``skills`` known at the start of the next sitting (the forgetting of this sitting's
        end applied, with the draws it will really use), leaving the learner as they are."""
        self._advance_to(self.answers)
        saved = (self.known.copy(), self.spaced.copy(), self.right_this_sitting.copy(), self.rng.bit_generator.state)
        self._end_sitting()
        known = float(np.mean([self.known[skill] for skill in skills]))
        self.known, self.spaced, self.right_this_sitting = saved[0], saved[1], saved[2]
        self.rng.bit_generator.state = saved[3]
        return known
