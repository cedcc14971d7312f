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
- what the learner practises follows one of two policies:

  ``"frontier"``: at each answer, with probability ``frontier_share``, a skill on the
  learner's true frontier (unknown, prerequisites known), else a skill uniformly at
  random (which exposes what happens when prerequisites are missing), with a small
  chance of reviewing a known skill. An oracle tutor: it sees the hidden state.

  ``"course"``: the course teaches the skills in a topological order of the graph, as a
  syllabus does. With ``cohorts=1`` (the default) every learner follows the same fixed
  order (:func:`course_order`); with ``cohorts=C`` learner l belongs to class l mod C and
  each class has its own syllabus, a random topological order (:func:`course_order`
  with a generator: Kahn's algorithm taking a uniformly drawn ready skill, so every
  order the graph allows can come up, though not all equally often), as classes and
  teachers order a course differently; ``cohorts=n_learners`` gives every learner their
  own. Each learner works on the current
  skill until ``mastery_streak`` right answers in a row or ``max_attempts`` attempts,
  then moves on whether or not the skill was learnt (the course has a schedule); with
  probability ``review_share`` it reviews an earlier skill of the course and with
  ``explore_share`` it tries any skill. After the last skill it reviews.

Why the course policy makes the direction of an edge identifiable, without copying
any model's form: i -> k means i comes first in the course, so learners meet i before
k. A slow learner who moves on without having learnt i (or who forgot it) then
practises k without learning it, while the same practice teaches k to learners who know
i; whereas learning i never depends on k. So practice on k is fruitless while i is
unknown, and the reverse edge k -> i would have to explain i being learnt before k.
Under the frontier policy learners rarely practise a skill whose prerequisites are
missing, so that contrast is thin; the two policies differ only in practice order,
the learning, forgetting and answer laws are the same.

Why several syllabi. With one fixed order, "j is taught just before k" holds for every
learner, so a skill j that is no prerequisite of k but whose knowledge implies one of
k's prerequisites (j shares that prerequisite, or is its descendant) is always the
freshest evidence that k can be learnt, and a model that tracks skills separately can
take j for k's prerequisite. When classes order the skills differently, some learners
meet k before j and learn it without j, which no edge j -> k allows; only the order
the graph imposes is common to every syllabus. ``cohorts`` changes only what is
practised when, and ``cohorts=1`` draws the same random stream as before it existed.
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
    was known at the moment of each answer (row order of ``data``). ``orders`` (cohorts, K):
    each class's syllabus under the course policy (learner l follows row l mod cohorts).
    """

    data: Dataset
    graph: np.ndarray
    learn: np.ndarray
    forget: np.ndarray
    known: np.ndarray
    orders: np.ndarray

    def edges(self) -> set[tuple[str, str]]:
        """The planted edges as (prerequisite skill id, skill id)."""
        sources, targets = np.nonzero(self.graph)
        return {(self.data.skill_ids[i], self.data.skill_ids[k]) for i, k in zip(sources, targets)}


def random_prerequisite_graph(
    n_skills: int, *, max_parents: int = 2, root_share: float = 0.25, seed: int = 0
) -> np.ndarray:
    """A random DAG (K, K) bool over skills in topological order 0..K-1.

    Skill 0 and about ``root_share`` of the others have no prerequisite; every other
    skill gets 1..``max_parents`` prerequisites among the earlier skills. The graph is
    returned transitively reduced, as prerequisite maps are drawn: a drawn edge i -> k
    that a longer path i -> ... -> k implies is dropped (after all draws, so the random
    stream, and every graph that has no such edge, are as before).
    """
    rng = np.random.default_rng(seed)
    graph = np.zeros((n_skills, n_skills), dtype=bool)
    for skill in range(1, n_skills):
        if rng.random() < root_share:
            continue
        n_parents = int(rng.integers(1, max_parents + 1))
        parents = rng.choice(skill, size=min(n_parents, skill), replace=False)
        graph[parents, skill] = True
    # reach[i, k]: a path of one or more edges from i to k (skills are in topological order,
    # so one pass over k in increasing order closes it).
    reach = graph.copy()
    for skill in range(n_skills):
        reach[:, skill] |= (reach[:, :skill] & graph[:skill, skill]).any(axis=1)
    longer = (reach.astype(int) @ graph.astype(int)) > 0  # paths of two or more edges
    return graph & ~longer


def course_order(graph: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """A topological order of the DAG ``graph`` (K, K): the order a course teaches its skills in.

    Without ``rng`` the one deterministic order (first ready skill first); with it a random
    one, each next skill drawn uniformly among those whose prerequisites are all taught.
    """
    graph = np.asarray(graph, dtype=bool)
    remaining = graph.sum(axis=0)
    order: list[int] = []
    ready = [skill for skill in range(len(graph)) if remaining[skill] == 0]
    while ready:
        skill = ready.pop(0 if rng is None else int(rng.integers(len(ready))))
        order.append(skill)
        for child in np.flatnonzero(graph[skill]):
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(int(child))
    if len(order) != len(graph):
        raise ValueError("graph has a cycle")
    return np.asarray(order)


def simulate_learners(
    graph: np.ndarray,
    *,
    n_learners: int = 200,
    n_answers: int = 120,
    learn: float = 0.3,
    forget: float = 0.05,
    trait_spread: float = 0.4,
    guess: float = 0.2,
    slip: float = 0.1,
    frontier_share: float = 0.6,
    review_share: float = 0.15,
    session_length: int = 10,
    answer_gap_seconds: float = 30.0,
    session_gap_days: float = 1.0,
    policy: str = "frontier",
    mastery_streak: int = 3,
    max_attempts: int = 6,
    explore_share: float = 0.1,
    cohorts: int = 1,
    seed: int = 0,
) -> Simulation:
    """Simulate ``n_learners`` learners answering ``n_answers`` items each over the DAG ``graph`` (K, K).

    Items are the skills themselves (item ``s<k>`` practises skill ``s<k>``). ``learn``
    and ``forget`` are population medians; ``trait_spread`` the sd of their logs.
    ``policy`` picks what each learner practises: ``"frontier"`` (the true frontier with
    ``frontier_share``, else random or review) or ``"course"`` (the course order with
    ``mastery_streak``, ``max_attempts``, ``review_share`` and ``explore_share``; with
    ``cohorts`` > 1, learner l follows class l mod ``cohorts``'s random syllabus). See
    the module docstring for the process.
    """
    if policy not in ("frontier", "course"):
        raise ValueError(f"policy must be 'frontier' or 'course', got {policy!r}")
    if cohorts < 1:
        raise ValueError(f"cohorts must be >= 1, got {cohorts}")
    graph = np.asarray(graph, dtype=bool)
    if cohorts == 1:
        orders = [course_order(graph)]
    else:  # a generator of its own, so the learners' stream is the same for every cohorts
        order_rng = np.random.default_rng([seed, 1])
        orders = [course_order(graph, order_rng) for _ in range(cohorts)]
    n_skills = graph.shape[0]
    rng = np.random.default_rng(seed)
    learn_rate = np.clip(learn * np.exp(trait_spread * rng.standard_normal(n_learners)), 0.01, 0.95)
    forget_rate = forget * np.exp(trait_spread * rng.standard_normal(n_learners))
    parents = [np.flatnonzero(graph[:, skill]) for skill in range(n_skills)]
    learners, items, answers, times, known_rows = [], [], [], [], []
    for learner in range(n_learners):
        order = orders[learner % cohorts]
        known = np.zeros(n_skills, dtype=bool)
        clock = float(rng.uniform(0, 86400.0))
        position, attempts, streak = 0, 0, 0
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
            draw = rng.random()
            current = False
            if policy == "course":
                if draw < explore_share:
                    skill = int(rng.integers(n_skills))
                elif position >= n_skills or (draw < explore_share + review_share and position > 0):
                    skill = int(order[rng.integers(min(position, n_skills))])
                else:
                    skill, current = int(order[position]), True
            else:
                frontier = np.flatnonzero(ready & ~known)
                if draw < frontier_share and len(frontier):
                    skill = int(rng.choice(frontier))
                elif draw < frontier_share + review_share and known.any():
                    skill = int(rng.choice(np.flatnonzero(known)))
                else:
                    skill = int(rng.integers(n_skills))
            was_known = bool(known[skill])
            right = rng.random() < (1 - slip if was_known else guess)
            if current:
                attempts, streak = attempts + 1, (streak + 1 if right else 0)
                if streak >= mastery_streak or attempts >= max_attempts:
                    position, attempts, streak = position + 1, 0, 0
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
    return Simulation(
        data=data,
        graph=graph,
        learn=learn_rate,
        forget=forget_rate,
        known=np.asarray(known_rows, dtype=bool),
        orders=np.asarray(orders),
    )


def edge_recovery(truth: set[tuple[str, str]], found: set[tuple[str, str]]) -> dict[str, float]:
    """Precision and recall of ``found`` edges against the ``truth`` (both (from, to) id pairs)."""
    hits = len(truth & found)
    return {
        "precision": hits / len(found) if found else 0.0,
        "recall": hits / len(truth) if truth else 1.0,
        "true_edges": len(truth),
        "found_edges": len(found),
    }
