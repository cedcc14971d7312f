"""Prerequisite links mined from answers, and how close a graph comes to an expert's (pure).

A learned prerequisite graph is only worth showing if it is closer to what experts draw than
what a simple miner finds in the same answers. This module holds the simple miners and the
scores both are judged by:

- :func:`transition_lift`: how much more often learners move straight from a question of skill
  i to one of skill k than the two skills' frequencies predict (the order a course teaches in
  is the order of its prerequisite map, so consecutive practice hints at a link);
- :func:`conditional_correctness`: for each ordered pair, how much better learners who did well
  on skill i before meeting skill k answer their first question of k than those who did not
  (the classic test of a prerequisite on performance data);
- :func:`learner_correlation`: how strongly learners who do better than expected on skill i also
  do on skill k, from questions of one skill only (what correctness alone, without order or
  shared questions, says about a link: the signal a graph learned from answers works with);
- :func:`average_precision`, :func:`top_k`, :func:`orientation_agreement`: undirected links
  ranked by a score against a set of expert links, and whether the direction a graph gives an
  expert link agrees with the order learners meet its two skills;
- :func:`bootstrap_ap_difference`: a paired bootstrap over candidate pairs for the difference
  in average precision of two scores.

Scores are (K, K) arrays over skills, ``score[i, k]`` for "i is a prerequisite of k"; an
undirected pair {i, k} takes the larger of its two directions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracing.data import Dataset


def _row_skills(data: Dataset) -> list[np.ndarray]:
    """The skills of each item (a question may carry several)."""
    return [np.flatnonzero(row) for row in data.q_matrix]


def transition_lift(data: Dataset) -> np.ndarray:
    """(K, K): observed over expected counts of consecutive answers moving from skill i to skill k.

    Consecutive answers of one learner on questions of different skills count once for each
    (skill of the first, skill of the second) with i != k; expected counts are the product of
    the skills' shares of first and second positions. Pairs never seen score 0.
    """
    n_skills = data.n_skills
    skills = _row_skills(data)
    counts = np.zeros((n_skills, n_skills))
    same = np.flatnonzero(data.learner[1:] == data.learner[:-1])
    for row in same:
        before, after = skills[int(data.item[row])], skills[int(data.item[row + 1])]
        counts[np.ix_(before, after)] += 1.0
    np.fill_diagonal(counts, 0.0)
    total = counts.sum()
    if total == 0:
        return counts
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(expected > 0, counts / expected, 0.0)
    return lift


def conditional_correctness(data: Dataset, *, min_learners: int = 5) -> np.ndarray:
    """(K, K): P(first answer on k right | did well on i before) - P(... | did badly on i before).

    For each learner and ordered pair (i, k) where the learner answered skill i before their
    first answer on skill k: "did well" is a share of right answers on i, up to that moment, of
    at least a half. Pairs with fewer than ``min_learners`` learners in either group score 0.
    """
    n_skills = data.n_skills
    skills = _row_skills(data)
    right = np.zeros((2, n_skills, n_skills))  # [did well?, i, k] first answers on k that were right
    seen = np.zeros((2, n_skills, n_skills))
    for _, rows in data.sequences():
        answered = np.zeros(n_skills)
        correct = np.zeros(n_skills)
        met = np.zeros(n_skills, dtype=bool)
        for row in range(rows.start, rows.stop):
            item_skills = skills[int(data.item[row])]
            good = float(data.correct[row]) >= 0.5
            first = item_skills[~met[item_skills]]
            if len(first):
                before = np.flatnonzero(answered > 0)
                if len(before):
                    well = (correct[before] / answered[before] >= 0.5).astype(int)
                    for group in (0, 1):
                        sources = before[well == group]
                        seen[group][np.ix_(sources, first)] += 1.0
                        if good:
                            right[group][np.ix_(sources, first)] += 1.0
                met[first] = True
            answered[item_skills] += 1.0
            correct[item_skills] += good
    enough = (seen >= min_learners).all(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(seen > 0, right / np.maximum(seen, 1.0), 0.0)
    score = np.where(enough, rate[1] - rate[0], 0.0)
    np.fill_diagonal(score, 0.0)
    return score


def learner_correlation(data: Dataset, *, min_learners: int = 20) -> np.ndarray:
    """(K, K) symmetric: correlation across learners of their residual correctness on two skills.

    A learner's residual on skill k is the mean, over their answers to questions tagged with k
    alone, of correct minus the question's overall rate of right answers, less that learner's mean
    residual over all skills (general ability is not a link). Questions of several skills are left
    out, so one answer never counts for two skills. Pairs answered by fewer than ``min_learners``
    learners, or with no spread, score 0.
    """
    n_skills = data.n_skills
    q = np.asarray(data.q_matrix, dtype=bool)
    hits = np.bincount(data.item, weights=data.correct, minlength=data.n_items)
    counts = np.bincount(data.item, minlength=data.n_items)
    residual = data.correct - hits[data.item] / np.maximum(counts[data.item], 1)
    single = q.sum(axis=1) == 1
    rows = single[data.item]
    skill = np.argmax(q, axis=1)[data.item[rows]]
    learner = data.learner[rows]
    answered = np.zeros((data.n_learners, n_skills))
    total = np.zeros((data.n_learners, n_skills))
    np.add.at(answered, (learner, skill), 1.0)
    np.add.at(total, (learner, skill), residual[rows])
    seen = answered > 0
    mean = np.where(seen, total / np.maximum(answered, 1.0), 0.0)
    per_learner = seen.sum(axis=1, keepdims=True)
    mean = np.where(seen, mean - mean.sum(axis=1, keepdims=True) / np.maximum(per_learner, 1), 0.0)
    # Pairwise-complete correlation: each pair over the learners who answered both skills.
    per_skill = seen.sum(axis=0)
    centred = np.where(seen, mean - mean.sum(axis=0) / np.maximum(per_skill, 1), 0.0)
    both = seen.T.astype(np.float64) @ seen
    product = centred.T @ centred
    spread = np.sqrt(((centred**2).T @ seen) * (seen.T.astype(np.float64) @ (centred**2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where((both >= min_learners) & (spread > 0), product / spread, 0.0)
    np.fill_diagonal(score, 0.0)
    return np.asarray(score)


def shared_items(data: Dataset) -> np.ndarray:
    """(K, K) symmetric: how many questions carry both skills (metadata, no answers used)."""
    q = data.q_matrix.astype(np.float64)
    shared = q.T @ q
    np.fill_diagonal(shared, 0.0)
    return shared


def first_met(data: Dataset) -> np.ndarray:
    """(K,): the mean relative position (0 first, 1 last) at which learners first meet each skill,
    over learners who meet it; NaN for a skill nobody answered. The order a course teaches in."""
    n_skills = data.n_skills
    skills = _row_skills(data)
    total = np.zeros(n_skills)
    learners = np.zeros(n_skills)
    for _, rows in data.sequences():
        length = rows.stop - rows.start
        met = np.zeros(n_skills, dtype=bool)
        for offset, row in enumerate(range(rows.start, rows.stop)):
            item_skills = skills[int(data.item[row])]
            fresh = item_skills[~met[item_skills]]
            total[fresh] += offset / max(length - 1, 1)
            learners[fresh] += 1.0
            met[fresh] = True
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(learners > 0, total / np.maximum(learners, 1.0), np.nan)


def candidate_pairs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair (i < k) of the skills flagged in ``active`` (K,) bool."""
    index = np.flatnonzero(active)
    first, second = np.triu_indices(len(index), k=1)
    return index[first], index[second]


def undirected(score: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A score per unordered pair: the larger of its two directions."""
    pair: np.ndarray = np.maximum(score[first, second], score[second, first])
    return pair


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ``scores`` ranking the pairs with ``labels`` True first (ties by index)."""
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = labels[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].sum() / positives)


def top_k(labels: np.ndarray, scores: np.ndarray, k: int) -> dict[str, float]:
    """Precision and recall of the ``k`` best-scored pairs (k = the expert's link count makes them equal)."""
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    hits = int(labels[order].sum())
    return {"k": k, "hits": hits, "precision": hits / k if k else 0.0, "recall": hits / max(int(labels.sum()), 1)}


def orientation_agreement(
    score: np.ndarray, first: np.ndarray, second: np.ndarray, order: np.ndarray
) -> dict[str, Any]:
    """For the pairs (first[j], second[j]) (expert links): the share where ``score`` points the link
    from the skill learners meet earlier (``order``, smaller is earlier) to the later one. Pairs with
    equal scores both ways, or no order for a skill, are left out."""
    forward = score[first, second]
    backward = score[second, first]
    earlier_first = order[first] < order[second]
    decided = (forward != backward) & np.isfinite(order[first]) & np.isfinite(order[second])
    agrees = (forward > backward) == earlier_first
    count = int(decided.sum())
    return {"links": count, "agree": float(agrees[decided].mean()) if count else float("nan")}


def bootstrap_ap_difference(
    labels: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of average precision of ``first`` minus ``second`` (two scores of the same
    candidate pairs), resampling pairs with replacement."""
    labels = np.asarray(labels, dtype=bool)
    observed = average_precision(labels, first) - average_precision(labels, second)
    rng = np.random.default_rng(seed)
    values = np.empty(draws)
    for draw in range(draws):
        pick = rng.integers(0, len(labels), len(labels))
        values[draw] = average_precision(labels[pick], first[pick]) - average_precision(labels[pick], second[pick])
    tail = (1.0 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return {
        "difference": float(observed),
        "interval": [float(low), float(high)],
        "excludes_zero": bool(low > 0 or high < 0),
        "draws": draws,
        "level": level,
    }
