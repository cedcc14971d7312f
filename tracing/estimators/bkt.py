"""Bayesian Knowledge Tracing, per skill, with pyBKT's parameters and variants.

A learner either knows a skill (state 1) or not (state 0). Per skill:
``prior`` P(known before the first answer), ``learns`` P(unknown -> known after
an answer), ``forgets`` P(known -> unknown; 0 unless ``forgets=True``),
``guesses`` P(correct | unknown), ``slips`` P(wrong | known). Variants:

- ``forgets=True``: fit the forgetting transition too (pyBKT's ``forgets``).
- ``multigs=True`` (KT-IDEM): one guess and one slip per (item, skill) link
  instead of per skill, so items of one skill can differ in difficulty.
- ``multiprior=True`` (prior per student, PPS): a learner's prior on a skill
  depends on a class read from that learner's *earlier* answers: class
  "none" when the learner has answered nothing yet, else the correct rate of
  their first ``prior_window`` answers (on any skill) cut into ``prior_bins``
  equal bins. The class of a (learner, skill) sequence is fixed by the answers
  given before its first answer, so it never peeks at the answer it predicts;
  EM fits one prior per (skill, class).

Multi-skill items follow pyBKT's rule of duplicating the row per skill: an
answer is an observation for every skill of the item, each skill updated on its
own. P(correct) of a multi-skill item is the *mean* of the per-skill
probabilities: each skill's guess/slip were fitted to predict the whole answer
by themselves, so each per-skill probability already estimates the same event,
and a product would count guessing once per skill (two skills at 0.7 would
predict 0.49, below both). Items without a skill predict the training correct
rate and update nothing.

Fitting is exact EM (Baum-Welch) over all skills at once in numba
(``bkt_kernels``): identical (skill, class, item, answer) sequences are fitted
once with a weight, every (skill, restart) runs to its own convergence, and
skills are spread over all cores; each skill keeps its best restart by
training log-likelihood. A restart stops when one iteration gains less than
``tol`` nats per answer of its skill (or after ``max_iter`` iterations; pyBKT
stops at 1e-3 nats per skill, 100 iterations). ``restarts`` counts restart 0
(a typical BKT start) plus random ones; guesses and slips stay in
``[1e-6, max_guess]`` and ``[1e-6, max_slip]``, the other probabilities in
``[1e-6, 1 - 1e-6]``. Because EM is per skill, a fit can be spread over
workers by skill: ``fit_skills`` fits some skills (one shard) and
``from_parts`` merges the shards into the model ``fit`` would have given, to
the bit (``fit`` is the one-shard case); ``shards`` only says how many
shards the service runs. BKT counts steps, not seconds: ``at`` is recorded but
time does not change mastery (forgetting happens per answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from tracing.data import Dataset
from tracing.estimators import bkt_kernels, hyper
from tracing.estimators.base import LearnerState, Progress, SkillSeparable

ARTIFACT_FORMAT = 1


class _Expanded:
    """Rows expanded to (learner, skill) sequences, grouped by skill then learner, in time order.

    ``row`` (M,) is the dataset row of each observation, ``pair`` (M,) its
    (item, skill) link, ``skill`` (M,); ``sequence_start`` (S+1,) the sequence
    boundaries, ``sequence_skill``/``sequence_learner``/``sequence_class`` (S,).
    """

    def __init__(self, data: Dataset, item_start: np.ndarray, pair_skill: np.ndarray, row_class: np.ndarray) -> None:
        (
            self.row,
            self.pair,
            self.skill,
            self.correct,
            self.sequence_start,
            self.sequence_skill,
            self.sequence_learner,
            self.sequence_class,
        ) = bkt_kernels.expand(
            data.item, data.learner, data.correct, row_class, item_start, pair_skill, len(data.skill_ids)
        )


class BKT(SkillSeparable):
    """Per-skill Bayesian Knowledge Tracing fitted by exact EM; see the module docstring."""

    kind = "bkt"
    PARAMS = hyper.BKT

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self.forgets, self.multigs, self.multiprior = config["forgets"], config["multigs"], config["multiprior"]
        self.restarts, self.max_iter, self.tol = config["restarts"], config["max_iter"], config["tol"]
        self.max_guess, self.max_slip = config["max_guess"], config["max_slip"]
        self.prior_window, self.prior_bins = config["prior_window"], config["prior_bins"]
        self.item_start = np.zeros(1, dtype=np.int64)
        self.pair_skill = np.zeros(0, dtype=np.int64)
        self.prior = np.zeros((0, self.n_classes))
        self.learns = np.zeros(0)
        self.forget_rates = np.zeros(0)
        self.guesses = np.zeros(0)
        self.slips = np.zeros(0)
        self.answers = np.zeros(0)
        self.base_rate = 0.5
        self.fit_info: dict[str, Any] = {}

    @classmethod
    def untrained(
        cls,
        *,
        item_ids: tuple[str, ...],
        skill_ids: tuple[str, ...],
        q_matrix: np.ndarray,
        prior: float = 0.1,
        learns: float = 0.15,
        guesses: float = 0.2,
        slips: float = 0.1,
    ) -> Self:
        """Textbook BKT parameters (Corbett & Anderson's typical ranges) for a course with no fit yet."""
        model = cls()
        q_matrix = np.asarray(q_matrix, dtype=bool)
        model._item_ids, model._skill_ids = tuple(item_ids), tuple(skill_ids)
        model.item_start = np.concatenate([[0], np.cumsum(q_matrix.sum(axis=1))]).astype(np.int64)
        model.pair_skill = np.nonzero(q_matrix)[1].astype(np.int64)  # row-major: grouped by item
        n_skills, n_pairs = len(skill_ids), int(q_matrix.sum())
        model.prior = np.full((n_skills, model.n_classes), prior)
        model.learns, model.forget_rates = np.full(n_skills, learns), np.zeros(n_skills)
        model.guesses, model.slips = np.full(n_pairs, guesses), np.full(n_pairs, slips)
        model.answers = np.zeros(n_skills)
        return model

    @property
    def n_classes(self) -> int:
        return self.prior_bins + 1 if self.multiprior else 1

    @property
    def n_skills(self) -> int:
        return len(self._skill_ids)

    @property
    def q_matrix(self) -> np.ndarray:  # type: ignore[override]  # read-only: BKT keeps the links
        """(n_items, n_skills) bool, rebuilt from the item -> skill links."""
        matrix = np.zeros((len(self._item_ids), self.n_skills), dtype=bool)
        items = np.repeat(np.arange(len(self._item_ids)), np.diff(self.item_start))
        matrix[items, self.pair_skill] = True
        return matrix

    # Prior classes (PPS) --------------------------------------------------------

    def _class_of(self, answered: np.ndarray, correct_sum: np.ndarray) -> np.ndarray:
        """Prior class from the first answers: 0 with none, else 1 + bin of the correct rate."""
        if not self.multiprior:
            return np.zeros(np.shape(answered), dtype=np.int64)
        answered = np.asarray(answered, dtype=np.float64)
        rate = np.asarray(correct_sum, dtype=np.float64) / np.maximum(answered, 1.0)
        bins = np.minimum((rate * self.prior_bins).astype(np.int64), self.prior_bins - 1)
        return np.where(answered > 0, 1 + bins, 0)

    def _row_classes(self, data: Dataset) -> np.ndarray:
        """(N,) the prior class of each row: from the learner's answers before it (first ``prior_window``)."""
        if not self.multiprior or data.n_rows == 0:
            return np.zeros(data.n_rows, dtype=np.int64)
        start = data.offsets[data.learner]
        answered = np.minimum(np.arange(data.n_rows) - start, self.prior_window)
        prefix = np.concatenate([[0.0], np.cumsum(data.correct, dtype=np.float64)])
        return self._class_of(answered, prefix[start + answered] - prefix[start])

    def _class_names(self) -> list[str]:
        if not self.multiprior:
            return ["all"]
        edges = np.linspace(0.0, 1.0, self.prior_bins + 1)
        return ["none"] + [f"{edges[b]:.2f}-{edges[b + 1]:.2f}" for b in range(self.prior_bins)]

    # Fitting --------------------------------------------------------------------

    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        """EM on every skill at once: ``fit_skills`` over all skills, then ``from_parts``."""
        return self.from_parts(data, [self.fit_skills(data, range(data.n_skills), seed=seed, progress=progress)])

    def fit_skills(
        self, data: Dataset, skills: Iterable[int], *, seed: int = 0, progress: Progress | None = None
    ) -> dict[str, Any]:
        """EM on the named skills (indices into ``data.skill_ids``) only: one shard of a fit spread over
        workers. Returns their fitted parameters as a JSON-ready dict, which ``from_parts`` merges.

        Each skill's EM reads that skill's sequences alone, and its random starts are its own columns of
        the one draw a whole fit makes from ``seed``, so a skill's parameters are the same (to the bit)
        whichever shard fits it. ``data`` may lack rows of items outside these skills; with ``multiprior``
        it needs every row of each learner, as a learner's prior class reads their first answers on any skill.
        """
        if progress:
            progress("prepare", 0.0)
        q_matrix = np.asarray(data.q_matrix, dtype=bool)
        n_skills, n_classes, n_restarts = data.n_skills, self.n_classes, self.restarts
        mine = np.zeros(n_skills, dtype=bool)
        mine[np.asarray(list(skills), dtype=np.int64)] = True
        shard_skills = np.flatnonzero(mine)
        pair_skill = np.nonzero(q_matrix)[1].astype(np.int64)  # every link, grouped by item
        # The shard's links (those of its skills), in the same order: a sub-Q-matrix over all skill indices.
        sub_q = q_matrix & mine[None, :]
        sub_item_start = np.concatenate([[0], np.cumsum(sub_q.sum(axis=1))]).astype(np.int64)
        sub_pair_skill = np.nonzero(sub_q)[1].astype(np.int64)
        pair_of_sub = np.flatnonzero(mine[pair_skill])  # a shard link -> its index among every link

        expanded = _Expanded(data, sub_item_start, sub_pair_skill, self._row_classes(data))
        # Emission classes numbered as in a fit of every skill (so sequences hash, sort and sum alike):
        # with multigs the (item, skill) links, renumbered so each skill's are contiguous; else the skills.
        if self.multigs:
            emission_of_pair = _emission_of_pair(pair_skill)[pair_of_sub]
            per_skill = np.bincount(pair_skill, minlength=n_skills)
        else:
            emission_of_pair = sub_pair_skill
            per_skill = np.ones(n_skills, dtype=np.int64)
        emission_start = np.concatenate([[0], np.cumsum(per_skill)]).astype(np.int64)
        emission = emission_of_pair[expanded.pair].astype(np.int32)

        hashes = bkt_kernels.sequence_hashes(
            expanded.sequence_start, emission, expanded.correct, expanded.sequence_skill, expanded.sequence_class
        )
        order = np.lexsort((hashes, expanded.sequence_skill))
        representative, weight = bkt_kernels.deduplicate(
            order,
            hashes,
            expanded.sequence_start,
            emission,
            expanded.correct,
            expanded.sequence_skill,
            expanded.sequence_class,
        )
        sequence_start, unique_emission, unique_correct = bkt_kernels.gather(
            representative, expanded.sequence_start, emission, expanded.correct
        )
        unique_skill = expanded.sequence_skill[representative]
        unique_class = expanded.sequence_class[representative]
        skill_sequence_start = np.concatenate([[0], np.cumsum(np.bincount(unique_skill, minlength=n_skills))])

        # The whole fit's draw, every skill and link: EM moves this shard's columns only.
        rng = np.random.default_rng(seed)
        prior, learn, forget, guess, slip = self._initial_parameters(
            rng, n_restarts, n_skills, n_classes, int(emission_start[-1])
        )
        work = np.bincount(unique_skill, weights=np.diff(sequence_start).astype(np.float64), minlength=n_skills)
        task_skill, bin_start = _schedule(work)
        loglik = np.zeros((n_restarts, n_skills))
        iterations = np.zeros((n_restarts, n_skills), dtype=np.int64)
        if progress:
            progress("em", 0.1)
        bkt_kernels.em_fit(
            sequence_start,
            unique_emission,
            unique_correct,
            weight,
            unique_class,
            skill_sequence_start.astype(np.int64),
            emission_start,
            prior,
            learn,
            forget,
            guess,
            slip,
            self.forgets,
            self.max_iter,
            self.tol,
            min(self.max_guess, 1 - bkt_kernels.EPSILON),
            min(self.max_slip, 1 - bkt_kernels.EPSILON),
            task_skill,
            bin_start,
            loglik,
            iterations,
        )

        best = np.argmax(loglik, axis=0)  # (K,) each skill keeps its best restart
        skill_index = np.arange(n_skills)
        emission_skill = np.repeat(skill_index, per_skill)
        emission_index = np.arange(len(emission_skill))
        pair_guess = guess[best[emission_skill], emission_index][emission_of_pair]
        pair_slip = slip[best[emission_skill], emission_index][emission_of_pair]
        if progress:
            progress("em", 1.0)
        chosen = best[shard_skills]
        return {
            "skills": shard_skills.tolist(),
            "prior": prior[chosen, shard_skills].tolist(),
            "learns": learn[chosen, shard_skills].tolist(),
            "forgets": (forget[chosen, shard_skills] if self.forgets else np.zeros(len(shard_skills))).tolist(),
            "answers": np.bincount(expanded.skill, minlength=n_skills)[shard_skills].tolist(),
            "loglik": loglik[chosen, shard_skills].tolist(),
            "iterations": iterations[:, shard_skills].sum(axis=0).tolist(),
            "pairs": pair_of_sub.tolist(),
            "guesses": pair_guess.tolist(),
            "slips": pair_slip.tolist(),
            "pair_answers": np.bincount(expanded.pair, minlength=len(sub_pair_skill)).tolist(),
            "sequences": int(len(expanded.sequence_skill)),
            "unique_sequences": int(len(representative)),
        }

    @staticmethod
    def skill_shards(q_matrix: np.ndarray, item_answers: np.ndarray, shards: int) -> list[list[int]]:
        """The skills split into ``shards`` groups of similar work (answers on the skill's items), largest
        first to the lightest group, ties to the lower skill and group; each group in skill order. The
        same counts give the same groups in every worker. Groups beyond the skills with answers are empty."""
        answers = np.asarray(q_matrix, dtype=np.int64).T @ np.asarray(item_answers, dtype=np.int64)
        load = np.zeros(shards, dtype=np.int64)
        groups: list[list[int]] = [[] for _ in range(shards)]
        for skill in np.argsort(-answers, kind="stable").tolist():
            target = int(np.argmin(load))
            groups[target].append(skill)
            load[target] += answers[skill]
        return [sorted(group) for group in groups]

    def shard_items(self, q_matrix: np.ndarray, skills: Sequence[int]) -> np.ndarray | None:
        """The items of these skills; every answer with ``multiprior`` (a prior class reads any skill's)."""
        if self.multiprior:
            return None
        return np.flatnonzero(np.asarray(q_matrix, dtype=bool)[:, list(skills)].any(axis=1))

    def from_parts(self, data: Dataset, parts: Sequence[dict[str, Any]]) -> Self:
        """The fitted model from ``fit_skills``'s parts, which must cover every skill of ``data`` once.

        The merge does not depend on the parts' order: each value goes to its skill's or link's place,
        and the sums are taken in skill order. Then what needs every skill: the training correct rate
        (``data``'s rows, items without a skill included) and the fallback of skills without answers.
        """
        q_matrix = np.asarray(data.q_matrix, dtype=bool)
        n_skills, n_pairs = data.n_skills, int(q_matrix.sum())
        self.item_start = np.concatenate([[0], np.cumsum(q_matrix.sum(axis=1))]).astype(np.int64)
        self.pair_skill = np.nonzero(q_matrix)[1].astype(np.int64)
        self._item_ids, self._skill_ids = tuple(data.item_ids), tuple(data.skill_ids)
        self.base_rate = float(data.correct.mean()) if data.n_rows else 0.5
        covered = np.zeros(n_skills, dtype=np.int64)
        for part in parts:
            np.add.at(covered, np.asarray(part["skills"], dtype=np.int64), 1)
        if not (covered == 1).all():
            missing, twice = np.flatnonzero(covered == 0), np.flatnonzero(covered > 1)
            raise ValueError(f"parts must cover every skill once: missing {missing.tolist()}, twice {twice.tolist()}")
        self.prior = np.zeros((n_skills, self.n_classes))
        self.learns, self.forget_rates, self.answers = np.zeros(n_skills), np.zeros(n_skills), np.zeros(n_skills)
        self.guesses, self.slips = np.zeros(n_pairs), np.zeros(n_pairs)
        loglik, iterations = np.zeros(n_skills), np.zeros(n_skills, dtype=np.int64)
        pair_answers = np.zeros(n_pairs, dtype=np.int64)
        sequences = unique = 0
        for part in parts:
            skills, pairs = np.asarray(part["skills"], dtype=np.int64), np.asarray(part["pairs"], dtype=np.int64)
            self.prior[skills] = np.asarray(part["prior"], dtype=np.float64).reshape(len(skills), self.n_classes)
            for name, key in (("learns", "learns"), ("forget_rates", "forgets"), ("answers", "answers")):
                getattr(self, name)[skills] = part[key]
            loglik[skills], iterations[skills] = part["loglik"], part["iterations"]
            self.guesses[pairs], self.slips[pairs] = part["guesses"], part["slips"]
            pair_answers[pairs] = part["pair_answers"]
            sequences, unique = sequences + part["sequences"], unique + part["unique_sequences"]
        self._fill_unseen(pair_answers)
        self.fit_info = {
            "sequences": sequences,
            "unique_sequences": unique,
            "iterations": int(iterations.sum()),
            "loglik": float(loglik.sum()),
        }
        return self

    def _initial_parameters(
        self, rng: np.random.Generator, n_restarts: int, n_skills: int, n_classes: int, n_emissions: int
    ) -> tuple[np.ndarray, ...]:
        """(R, ...) starting points: restart 0 a typical BKT fit, the rest drawn at random."""
        prior = rng.uniform(0.05, 0.95, (n_restarts, n_skills, n_classes))
        learn = rng.uniform(0.01, 0.4, (n_restarts, n_skills))
        forget = rng.uniform(0.01, 0.2, (n_restarts, n_skills)) if self.forgets else np.zeros((n_restarts, n_skills))
        guess = rng.uniform(0.01, 1.0, (n_restarts, n_emissions)) * min(0.4, self.max_guess)
        slip = rng.uniform(0.01, 1.0, (n_restarts, n_emissions)) * min(0.3, self.max_slip)
        prior[0], learn[0] = 0.4, 0.15
        guess[0], slip[0] = min(0.2, self.max_guess / 2), min(0.1, self.max_slip / 2)
        if self.forgets:
            forget[0] = 0.05
        return prior, learn, forget, guess, slip

    def _fill_unseen(self, pair_answers: np.ndarray) -> None:
        """Skills (and, for KT-IDEM, links) without training answers take the answer-weighted mean."""
        seen = self.answers > 0
        if not seen.any():
            return
        weights = self.answers[seen]
        for name in ("prior", "learns", "forget_rates"):
            values = getattr(self, name)
            values[~seen] = np.average(values[seen], axis=0, weights=weights)
        pair_seen = pair_answers > 0
        for name in ("guesses", "slips"):
            values = getattr(self, name)
            fallback = np.average(values[pair_seen], weights=pair_answers[pair_seen]) if pair_seen.any() else 0.2
            for pair in np.flatnonzero(~pair_seen):
                same_skill = pair_seen & (self.pair_skill == self.pair_skill[pair])
                values[pair] = (
                    np.average(values[same_skill], weights=pair_answers[same_skill]) if same_skill.any() else fallback
                )

    # Prediction -----------------------------------------------------------------

    def _filter(self, data: Dataset) -> tuple[_Expanded, np.ndarray, np.ndarray]:
        expanded = _Expanded(data, self.item_start, self.pair_skill, self._row_classes(data))
        predicted = np.empty(len(expanded.row))
        final = np.empty(len(expanded.sequence_skill))
        bkt_kernels.filter_sequences(
            expanded.sequence_start,
            expanded.pair.astype(np.int32),
            expanded.correct,
            expanded.sequence_skill,
            expanded.sequence_class,
            self.prior,
            self.learns,
            self.forget_rates,
            self.guesses,
            self.slips,
            predicted,
            final,
        )
        return expanded, predicted, final

    def predict_proba(self, data: Dataset) -> np.ndarray:
        """P(correct) (N,) for every row from the learner's earlier rows: the BKT filter per (learner, skill)."""
        data = self.aligned(data)
        expanded, predicted, _ = self._filter(data)
        sums = np.bincount(expanded.row, weights=predicted, minlength=data.n_rows)
        counts = np.bincount(expanded.row, minlength=data.n_rows)
        return np.where(counts > 0, sums / np.maximum(counts, 1), self.base_rate)

    def initial_state(self) -> LearnerState:
        memory: dict[str, Any] = {}
        if self.multiprior:
            memory = {"answered": 0, "correct": 0.0, "practised": []}
        return LearnerState(mastery=self.prior[:, 0].copy(), memory=memory)

    def _step(self, mastery: np.ndarray, pairs: np.ndarray, correct: float) -> np.ndarray:
        """Each (item, skill) pair's mastery after the answer: Bayes posterior on it, then learn/forget."""
        skills = self.pair_skill[pairs]
        known = mastery[skills]
        guess, slip = self.guesses[pairs], self.slips[pairs]
        joint_known = known * (correct * (1.0 - slip) + (1.0 - correct) * slip)
        evidence = joint_known + (1.0 - known) * (correct * guess + (1.0 - correct) * (1.0 - guess))
        posterior = joint_known / evidence
        after: np.ndarray = posterior * (1.0 - self.forget_rates[skills]) + (1.0 - posterior) * self.learns[skills]
        return after

    def _prior_class(self, memory: dict[str, Any], correct: float) -> tuple[int, float, int]:
        """(answers counted, their correct sum, prior class) after one more answer (multiprior)."""
        answered, correct_sum = int(memory["answered"]), float(memory["correct"])
        if answered < self.prior_window:
            answered, correct_sum = answered + 1, correct_sum + float(correct)
        return answered, correct_sum, int(self._class_of(np.array(answered), np.array(correct_sum)))

    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        """One filter step on each skill of ``item``: Bayes posterior on the answer, then learn/forget."""
        mastery = np.array(state.mastery, dtype=np.float64)
        pairs = np.arange(self.item_start[item], self.item_start[item + 1])
        skills = self.pair_skill[pairs]
        mastery[skills] = self._step(mastery, pairs, correct)
        memory = state.memory
        if self.multiprior:
            answered, correct_sum, klass = self._prior_class(memory, correct)
            practised = sorted(set(memory["practised"]) | {int(s) for s in skills})
            untouched = np.ones(self.n_skills, dtype=bool)
            untouched[practised] = False
            mastery[untouched] = self.prior[untouched, klass]
            memory = {"answered": answered, "correct": correct_sum, "practised": practised}
        return LearnerState(mastery=mastery, memory=memory, at=at)

    def update_each(self, state: LearnerState, items: np.ndarray, *, correct: float, at: float) -> np.ndarray:
        """``update`` for each of ``items`` (M,) from the same state, as one (M, K) array operation."""
        items = np.asarray(items, dtype=np.int64)
        mastery = np.asarray(state.mastery, dtype=np.float64)
        counts = self.item_start[items + 1] - self.item_start[items]
        owner = np.repeat(np.arange(len(items)), counts)  # the row of each (item, skill) pair
        pairs = np.repeat(self.item_start[items] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        after = np.tile(mastery, (len(items), 1))
        if self.multiprior:
            # As in update: skills never practised (counting this item's) take the prior of the learner's
            # class after this answer, which is the same class for every row.
            klass = self._prior_class(state.memory, correct)[2]
            untouched = np.ones(self.n_skills, dtype=bool)
            untouched[list(state.memory["practised"])] = False
            after[:, untouched] = self.prior[untouched, klass]
        after[owner, self.pair_skill[pairs]] = self._step(mastery, pairs, correct)
        return after

    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        """P(correct) (M,) for each of ``items`` answered next: mean over the item's skills."""
        items = np.asarray(items, dtype=np.int64)
        counts = self.item_start[items + 1] - self.item_start[items]
        first = np.cumsum(counts) - counts
        owner = np.repeat(np.arange(len(items)), counts)
        pairs = self.item_start[items][owner] + np.arange(int(counts.sum())) - first[owner]
        known = np.asarray(state.mastery, dtype=np.float64)[self.pair_skill[pairs]]
        probability = known * (1.0 - self.slips[pairs]) + (1.0 - known) * self.guesses[pairs]
        sums = np.bincount(owner, weights=probability, minlength=len(items))
        return np.where(counts > 0, sums / np.maximum(counts, 1), self.base_rate)

    def final_states(self, data: Dataset) -> list[LearnerState]:
        """Every learner's state after all their rows, from one vectorised filter pass."""
        data = self.aligned(data)
        expanded, _, final = self._filter(data)
        lengths = data.lengths
        answered = np.minimum(lengths, self.prior_window)
        prefix = np.concatenate([[0.0], np.cumsum(data.correct, dtype=np.float64)])
        correct_sum = prefix[data.offsets[:-1] + answered] - prefix[data.offsets[:-1]]
        klass = self._class_of(answered, correct_sum)
        mastery = self.prior[:, klass].T.copy()  # (n_learners, K)
        mastery[expanded.sequence_learner, expanded.sequence_skill] = final
        last_at = np.where(lengths > 0, data.timestamp[np.maximum(data.offsets[1:] - 1, 0)], np.nan)
        practised: list[list[int]] = [[] for _ in range(data.n_learners)]
        if self.multiprior:
            for learner, skill in zip(expanded.sequence_learner.tolist(), expanded.sequence_skill.tolist()):
                practised[learner].append(skill)
        states = []
        for learner in range(data.n_learners):
            memory: dict[str, Any] = {}
            if self.multiprior:
                memory = {
                    "answered": int(answered[learner]),
                    "correct": float(correct_sum[learner]),
                    "practised": sorted(practised[learner]),
                }
            at = float(last_at[learner]) if lengths[learner] else None
            states.append(LearnerState(mastery=mastery[learner], memory=memory, at=at))
        return states

    # Reporting and persistence --------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """Per skill, pyBKT's names; with ``multigs`` guesses/slips are {item id: value}."""
        names = self._class_names()
        result: dict[str, Any] = {}
        for skill, skill_id in enumerate(self._skill_ids):
            pairs = np.flatnonzero(self.pair_skill == skill)
            entry: dict[str, Any] = {
                "prior": float(self.prior[skill, 0]),
                "learns": float(self.learns[skill]),
                "forgets": float(self.forget_rates[skill]),
                "answers": int(self.answers[skill]),
            }
            if self.multiprior:
                entry["priors"] = {name: float(value) for name, value in zip(names, self.prior[skill])}
            items = np.searchsorted(self.item_start, pairs, side="right") - 1
            if self.multigs:
                entry["guesses"] = {self._item_ids[i]: float(self.guesses[p]) for i, p in zip(items, pairs)}
                entry["slips"] = {self._item_ids[i]: float(self.slips[p]) for i, p in zip(items, pairs)}
            elif len(pairs):
                entry["guesses"], entry["slips"] = float(self.guesses[pairs[0]]), float(self.slips[pairs[0]])
            result[skill_id] = entry
        return {"variant": self.hyper_parameters(), "skills": result}

    def save(self, path: Path) -> None:
        """One JSON file: hyper-parameters, vocabulary, item -> skill links and all parameters."""
        Path(path).write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "format": ARTIFACT_FORMAT,
                    "hyper_parameters": self.hyper_parameters(),
                    "item_ids": list(self._item_ids),
                    "skill_ids": list(self._skill_ids),
                    "item_start": self.item_start.tolist(),
                    "pair_skill": self.pair_skill.tolist(),
                    "prior": self.prior.tolist(),
                    "learns": self.learns.tolist(),
                    "forgets": self.forget_rates.tolist(),
                    "guesses": self.guesses.tolist(),
                    "slips": self.slips.tolist(),
                    "answers": self.answers.tolist(),
                    "base_rate": self.base_rate,
                    "fit_info": self.fit_info,
                }
            )
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        payload = json.loads(Path(path).read_text())
        if payload.get("kind") != cls.kind or payload.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"{path} is not a bkt artifact of format {ARTIFACT_FORMAT}")
        model = cls.restored(payload["hyper_parameters"])
        model._item_ids, model._skill_ids = tuple(payload["item_ids"]), tuple(payload["skill_ids"])
        model.item_start = np.asarray(payload["item_start"], dtype=np.int64)
        model.pair_skill = np.asarray(payload["pair_skill"], dtype=np.int64)
        model.prior = np.asarray(payload["prior"], dtype=np.float64).reshape(len(model._skill_ids), model.n_classes)
        for name, key in (
            ("learns", "learns"),
            ("forget_rates", "forgets"),
            ("guesses", "guesses"),
            ("slips", "slips"),
            ("answers", "answers"),
        ):
            setattr(model, name, np.asarray(payload[key], dtype=np.float64))
        model.base_rate = float(payload["base_rate"])
        model.fit_info = payload.get("fit_info", {})
        return model


def _emission_of_pair(pair_skill: np.ndarray) -> np.ndarray:
    """Each link's emission class when the links are renumbered so each skill's are contiguous (KT-IDEM)."""
    order = np.argsort(pair_skill, kind="stable")
    emission = np.empty(len(order), dtype=np.int64)
    emission[order] = np.arange(len(order))
    return emission


def _schedule(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skills with data in one bin per thread, largest first to the lightest bin (LPT).

    ``work`` (K,) is each skill's number of answers. Returns the skills ordered
    by bin (T,) and bin_start (B+1,).
    """
    from numba import get_num_threads

    n_bins = max(1, get_num_threads())
    skills = np.flatnonzero(work > 0)
    skills = skills[np.argsort(-work[skills], kind="stable")]
    load = np.zeros(n_bins)
    bins: list[list[int]] = [[] for _ in range(n_bins)]
    for skill in skills.tolist():
        target = int(np.argmin(load))
        bins[target].append(skill)
        load[target] += work[skill]
    bin_start = np.concatenate([[0], np.cumsum([len(b) for b in bins])]).astype(np.int64)
    return np.array([s for b in bins for s in b], dtype=np.int64), bin_start
