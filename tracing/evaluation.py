"""One evaluation protocol for every estimator: learner splits, next-step and multi-step metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracing.data import Dataset
from tracing.estimators.base import Estimator


def split_learners(data: Dataset, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split by learner (never inside a learner's sequence) with a fixed seed."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be in (0, 1)")
    order = np.random.default_rng(seed).permutation(data.n_learners)
    n_test = max(1, int(round(data.n_learners * test_fraction))) if data.n_learners > 1 else 0
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return data.subset(train), data.subset(test)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties given half credit; NaN if one class."""
    labels = np.asarray(labels) >= 0.5
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def metrics(correct: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC, RMSE, log-loss and accuracy of P(correct) against answers (scores in [0,1] allowed)."""
    correct = np.asarray(correct, dtype=np.float64)
    probability = np.clip(np.asarray(probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    if len(correct) == 0:
        return {"auc": float("nan"), "rmse": float("nan"), "logloss": float("nan"), "accuracy": float("nan"), "n": 0}
    return {
        "auc": auc(correct, probability),
        "rmse": float(np.sqrt(np.mean((correct - probability) ** 2))),
        "logloss": float(-np.mean(correct * np.log(probability) + (1 - correct) * np.log(1 - probability))),
        "accuracy": float(np.mean((probability >= 0.5) == (correct >= 0.5))),
        "n": int(len(correct)),
    }


def evaluate(estimator: Estimator, test: Dataset) -> dict[str, float]:
    """Next-step prediction metrics on held-out learners."""
    return metrics(test.correct, estimator.predict_proba(test))


def multistep_predict(estimator: Estimator, data: Dataset, *, horizon: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Predict each learner's last ``horizon`` answers from the rows before them, without seeing them.

    Learners with no more than ``horizon`` rows are skipped (no history) before the estimator sees the
    data: an estimator is never handed a learner with an empty history. Returns (answers,
    probabilities), both (M,).
    """
    long_enough = np.flatnonzero(data.lengths > horizon)
    if len(long_enough) == 0:
        return np.zeros(0), np.zeros(0)
    data = data.subset(long_enough)
    lengths = data.lengths
    states = estimator.final_states(data.truncate(lengths - horizon))
    answers: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    for learner in range(data.n_learners):
        rows = np.arange(data.offsets[learner + 1] - horizon, data.offsets[learner + 1])
        state = states[learner]
        for row in rows:
            probabilities.append(
                estimator.predict_next(state, data.item[row : row + 1], at=float(data.timestamp[row]))
            )
        answers.append(data.correct[rows])
    return np.concatenate(answers), np.concatenate(probabilities)


def evaluate_multistep(estimator: Estimator, test: Dataset, *, horizon: int = 10) -> dict[str, Any]:
    """Multi-step metrics: the next ``horizon`` answers predicted from history alone.

    ``learners`` counts the held-out learners evaluated; ``skipped_learners`` those with ``horizon``
    answers or fewer, too short to hold a history and a horizon (their metrics are NaN when all are).
    """
    answers, probabilities = multistep_predict(estimator, test, horizon=horizon)
    evaluated = int(np.count_nonzero(test.lengths > horizon))
    return {**metrics(answers, probabilities), "horizon": horizon, "learners": evaluated,
            "skipped_learners": test.n_learners - evaluated}
