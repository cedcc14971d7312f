"""Simulated learners over a known prerequisite graph: ground truth for tests and benches.

Pure numpy, no Django and no torch. :func:`random_prerequisite_graph` draws a DAG of
skills; :func:`simulate_learners` lets learners practise it in real time and returns
the answers as a :class:`tracing.data.Dataset` together with the truth (graph and each
learner's learning and forgetting rates), so a model's learned prerequisites, traits
and forgetting can be checked against what generated the data.

The learner model (a BKT-like binary state with prerequisites and forgetting):

- each learner l has a learning rate ``learn_l`` (probability of acquiring a skill on a
  practice attempt) and a forgetting rate ``forget_l`` (per day), drawn log-normally
  around the given means, so learners differ;
- a skill can be acquired only once all its prerequisites are known; practising a
  skill whose prerequisites are not all known teaches nothing;
- a known skill is forgotten between two answers with probability
  ``1 - exp(-forget_l * elapsed days)``;
- an answer is right with probability ``1 - slip`` if the skill is known, ``guess`` if not;
- practice runs in sessions of a few answers seconds apart; sessions are separated by
  gaps of about ``session_gap_days`` days (exponential), so timestamps are real seconds;
- at each answer the learner picks, with probability ``frontier_share``, a skill on its
  frontier (unknown, prerequisites known), else a skill uniformly at random (which
  exposes what happens when prerequisites are missing), with a small chance of
  reviewing a known skill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracing.data import Dataset


@dataclass(frozen=True)
class Simulation:
    """Simulated answers and the truth behind them.

    ``graph`` (K, K) bool: ``graph[i, k]`` means skill i is a prerequisite of skill k.
    ``learn`` and ``forget`` (n_learners,): each learner's learning probability per
    attempt and forgetting rate per day. ``known`` (N,) bool: whether the practised skill
    was known at the moment of each answer (row order of ``data``).
    """

    data: Dataset
    graph: np.ndarray
    learn: np.ndarray
    forget: np.ndarray
    known: np.ndarray

    def edges(self) -> set[tuple[str, str]]:
        """The planted edges as (prerequisite skill id, skill id)."""
        sources, targets = np.nonzero(self.graph)
        return {(self.data.skill_ids[i], self.data.skill_ids[k]) for i, k in zip(sources, targets)}


def random_prerequisite_graph(n_skills: int, *, max_parents: int = 2, root_share: float = 0.25,
                              seed: int = 0) -> np.ndarray:
    """A random DAG (K, K) bool over skills in topological order 0..K-1.

    Skill 0 and about ``root_share`` of the others have no prerequisite; every other
    skill gets 1..``max_parents`` prerequisites among the earlier skills.
    """
    rng = np.random.default_rng(seed)
    graph = np.zeros((n_skills, n_skills), dtype=bool)
    for skill in range(1, n_skills):
        if rng.random() < root_share:
            continue
        n_parents = int(rng.integers(1, max_parents + 1))
        parents = rng.choice(skill, size=min(n_parents, skill), replace=False)
        graph[parents, skill] = True
    return graph


def simulate_learners(graph: np.ndarray, *, n_learners: int = 200, n_answers: int = 120,
                      learn: float = 0.3, forget: float = 0.05, trait_spread: float = 0.4,
                      guess: float = 0.2, slip: float = 0.1, frontier_share: float = 0.6,
                      review_share: float = 0.15, session_length: int = 10, answer_gap_seconds: float = 30.0,
                      session_gap_days: float = 1.0, seed: int = 0) -> Simulation:
    """Simulate ``n_learners`` learners answering ``n_answers`` items each over the DAG ``graph`` (K, K).

    Items are the skills themselves (item ``s<k>`` practises skill ``s<k>``). ``learn``
    and ``forget`` are population medians; ``trait_spread`` the sd of their logs. See
    the module docstring for the process.
    """
    graph = np.asarray(graph, dtype=bool)
    n_skills = graph.shape[0]
    rng = np.random.default_rng(seed)
    learn_rate = np.clip(learn * np.exp(trait_spread * rng.standard_normal(n_learners)), 0.01, 0.95)
    forget_rate = forget * np.exp(trait_spread * rng.standard_normal(n_learners))
    parents = [np.flatnonzero(graph[:, skill]) for skill in range(n_skills)]
    learners, items, answers, times, known_rows = [], [], [], [], []
    for learner in range(n_learners):
        known = np.zeros(n_skills, dtype=bool)
        clock = float(rng.uniform(0, 86400.0))
        for step in range(n_answers):
            if step:
                if step % session_length == 0:
                    gap = float(rng.exponential(session_gap_days * 86400.0))
                else:
                    gap = float(rng.exponential(answer_gap_seconds))
                clock += gap
                lost = rng.random(n_skills) < 1 - np.exp(-forget_rate[learner] * gap / 86400.0)
                known &= ~lost
            ready = np.array([known[parents[skill]].all() for skill in range(n_skills)])
            frontier = np.flatnonzero(ready & ~known)
            draw = rng.random()
            if draw < frontier_share and len(frontier):
                skill = int(rng.choice(frontier))
            elif draw < frontier_share + review_share and known.any():
                skill = int(rng.choice(np.flatnonzero(known)))
            else:
                skill = int(rng.integers(n_skills))
            was_known = bool(known[skill])
            right = rng.random() < (1 - slip if was_known else guess)
            if not was_known and ready[skill] and rng.random() < learn_rate[learner]:
                known[skill] = True
            learners.append(learner)
            items.append(skill)
            answers.append(float(right))
            times.append(clock)
            known_rows.append(was_known)
    skill_ids = tuple(f"s{skill}" for skill in range(n_skills))
    data = Dataset(
        learner=np.asarray(learners, dtype=np.int32),
        item=np.asarray(items, dtype=np.int32),
        correct=np.asarray(answers, dtype=np.float32),
        timestamp=np.asarray(times, dtype=np.float64),
        q_matrix=np.eye(n_skills, dtype=bool),
        item_ids=skill_ids,
        skill_ids=skill_ids,
        learner_ids=tuple(f"sim{learner}" for learner in range(n_learners)),
        has_time=True,
    )
    return Simulation(data=data, graph=graph, learn=learn_rate, forget=forget_rate,
                      known=np.asarray(known_rows, dtype=bool))


def edge_recovery(truth: set[tuple[str, str]], found: set[tuple[str, str]]) -> dict[str, float]:
    """Precision and recall of ``found`` edges against the ``truth`` (both (from, to) id pairs)."""
    hits = len(truth & found)
    return {"precision": hits / len(found) if found else 0.0, "recall": hits / len(truth) if truth else 1.0,
            "true_edges": len(truth), "found_edges": len(found)}
