"""One evaluation protocol for every estimator: learner splits, next-step and multi-step metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
        "n": len(correct),
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
            probabilities.append(estimator.predict_next(state, data.item[row : row + 1], at=float(data.timestamp[row])))
        answers.append(data.correct[rows])
    return np.concatenate(answers), np.concatenate(probabilities)


def evaluate_multistep(estimator: Estimator, test: Dataset, *, horizon: int = 10) -> dict[str, Any]:
    """Multi-step metrics: the next ``horizon`` answers predicted from history alone.

    ``learners`` counts the held-out learners evaluated; ``skipped_learners`` those with ``horizon``
    answers or fewer, too short to hold a history and a horizon (their metrics are NaN when all are).
    """
    answers, probabilities = multistep_predict(estimator, test, horizon=horizon)
    evaluated = int(np.count_nonzero(test.lengths > horizon))
    return {
        **metrics(answers, probabilities),
        "horizon": horizon,
        "learners": evaluated,
        "skipped_learners": test.n_learners - evaluated,
    }


# ---------------------------------------------------------------- comparison statistics (issue 16)


def learner_folds(n_learners: int, *, folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """``folds`` disjoint, sorted sets of learner indices covering every learner once (k-fold by learner)."""
    if folds < 2 or folds > n_learners:
        raise ValueError(f"need 2 <= folds <= n_learners, got {folds} folds for {n_learners} learners")
    order = np.random.default_rng(seed).permutation(n_learners)
    return [np.sort(part) for part in np.array_split(order, folds)]


def calibration(correct: np.ndarray, probability: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error over ``bins`` equal-width bins of P(correct), and the reliability
    table behind it: per bin its range, row count, mean predicted probability and observed rate.

    ECE is the row-weighted mean of |observed rate - mean prediction| over the bins (empty bins
    count nothing); ``max_gap`` the worst bin holding at least 1% of the rows.
    """
    correct = np.asarray(correct, dtype=np.float64)
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    if len(correct) == 0:
        return {"ece": float("nan"), "max_gap": float("nan"), "bins": []}
    which = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=probability, minlength=bins)
    observed = np.bincount(which, weights=correct, minlength=bins)
    table, ece, max_gap = [], 0.0, 0.0
    for index in range(bins):
        if count[index] == 0:
            continue
        mean_p, rate = predicted[index] / count[index], observed[index] / count[index]
        gap = abs(rate - mean_p)
        ece += gap * count[index] / len(correct)
        if count[index] >= 0.01 * len(correct):
            max_gap = max(max_gap, gap)
        table.append(
            {
                "low": index / bins,
                "high": (index + 1) / bins,
                "n": int(count[index]),
                "predicted": float(mean_p),
                "observed": float(rate),
            }
        )
    return {"ece": float(ece), "max_gap": float(max_gap), "bins": table}


class _SortedScores:
    """One model's scores sorted once, so that a learner-weighted AUC costs O(rows) per bootstrap draw."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray, group_index: np.ndarray) -> None:
        order = np.argsort(scores, kind="mergesort")
        ordered = scores[order]
        self.starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1])
        self.positive = labels[order]
        self.group = group_index[order]

    def auc(self, counts: np.ndarray) -> float:
        """AUC with each row weighted by its learner's count in ``counts`` (ties given half credit)."""
        weights = counts[self.group]
        positive = np.add.reduceat(weights * self.positive, self.starts)
        negative = np.add.reduceat(weights, self.starts) - positive
        below = np.cumsum(negative) - negative
        total = positive.sum() * negative.sum()
        return float(np.sum(positive * (below + 0.5 * negative)) / total) if total > 0 else float("nan")


def _rmse(squared_error_by_group: np.ndarray, rows_by_group: np.ndarray, counts: np.ndarray) -> float:
    return float(np.sqrt(counts @ squared_error_by_group / (counts @ rows_by_group)))


def bootstrap_difference(
    correct: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    groups: np.ndarray,
    *,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of ``first`` minus ``second`` (two models' P(correct) on the same rows), for
    AUC and RMSE, resampling whole learners (``groups``: a learner id per row) with replacement.

    Paired: both models are scored on the same draw of learners, so what the two share (which
    learners happen to be easy) cancels. Returns the observed differences and percentile
    intervals; ``auc_excludes_zero`` says whether the AUC interval lies on one side of zero.
    """
    labels = (np.asarray(correct, dtype=np.float64) >= 0.5).astype(np.float64)
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    _, group_index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(group_index.max()) + 1 if len(group_index) else 0
    if n_groups < 2:
        raise ValueError("bootstrap needs at least two learners")
    sorted_first = _SortedScores(labels, first, group_index)
    sorted_second = _SortedScores(labels, second, group_index)
    rows = np.bincount(group_index, minlength=n_groups).astype(np.float64)
    error_first = np.bincount(group_index, weights=(labels - first) ** 2, minlength=n_groups)
    error_second = np.bincount(group_index, weights=(labels - second) ** 2, minlength=n_groups)
    ones = np.ones(n_groups)
    observed_auc = sorted_first.auc(ones) - sorted_second.auc(ones)
    observed_rmse = _rmse(error_first, rows, ones) - _rmse(error_second, rows, ones)
    rng = np.random.default_rng(seed)
    auc_draws, rmse_draws = np.empty(draws), np.empty(draws)
    for draw in range(draws):
        counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(np.float64)
        auc_draws[draw] = sorted_first.auc(counts) - sorted_second.auc(counts)
        rmse_draws[draw] = _rmse(error_first, rows, counts) - _rmse(error_second, rows, counts)
    tail = (1.0 - level) / 2 * 100
    auc_low, auc_high = np.nanpercentile(auc_draws, [tail, 100 - tail])
    rmse_low, rmse_high = np.nanpercentile(rmse_draws, [tail, 100 - tail])
    return {
        "auc_difference": float(observed_auc),
        "auc_interval": [float(auc_low), float(auc_high)],
        "rmse_difference": float(observed_rmse),
        "rmse_interval": [float(rmse_low), float(rmse_high)],
        "auc_excludes_zero": bool(auc_low > 0 or auc_high < 0),
        "level": level,
        "draws": draws,
        "learners": n_groups,
        "rows": len(labels),
    }


def chunked(data: Dataset, *, chunk: int = 200, min_rows: int = 3) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """pyKT's evaluation protocol as data: each learner's sequence cut into ``chunk``-row pieces, each
    piece a learner of its own (context restarts), pieces under ``min_rows`` rows dropped.

    Returns (chunked data, the original row index of each of its rows, which rows are scored): pyKT
    scores every row of a piece but its first (predicted from nothing).
    """
    position = np.arange(data.n_rows) - data.offsets[data.learner]
    piece = position // chunk
    piece_length = np.minimum(data.lengths[data.learner] - piece * chunk, chunk)
    keep = np.flatnonzero(piece_length >= min_rows)
    key = data.learner[keep].astype(np.int64) * (int(piece.max(initial=0)) + 1) + piece[keep]
    _, first, new_learner = np.unique(key, return_index=True, return_inverse=True)
    names = [f"{data.learner_ids[data.learner[keep[row]]]}#{piece[keep[row]]}" for row in first]
    pieces = Dataset(
        learner=new_learner.astype(np.int32),
        item=data.item[keep],
        correct=data.correct[keep],
        timestamp=data.timestamp[keep],
        q_matrix=data.q_matrix,
        item_ids=data.item_ids,
        skill_ids=data.skill_ids,
        learner_ids=tuple(names),
        has_time=data.has_time,
    )
    scored = position[keep] % chunk != 0
    return pieces, keep, scored


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof 1) of per-fold figures; NaNs left out."""
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    if len(array) == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0, "n": len(array)}


def weighted_mean(values: np.ndarray, counts: np.ndarray) -> float:
    """The mean of ``values`` (one per learner) with learner ``i`` counted ``counts[i]`` times."""
    return float(counts @ values / counts.sum())


def weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """The (upper) median of ``values`` with learner ``i`` counted ``counts[i]`` times; infinite values
    (censored: never reached) sort last, so the median is infinite when half of the weight is."""
    order = np.argsort(values, kind="mergesort")
    cumulative = np.cumsum(counts[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2.0, side="right")])


def bootstrap_learners(
    columns: Sequence[np.ndarray],
    statistic: Callable[[Sequence[np.ndarray], np.ndarray], float],
    *,
    draws: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap by learner of any figure computed from per-learner outcomes.

    ``columns``: arrays whose first axis is the same learners in the same order (one per policy or
    condition, each learner under every one of them: the same simulated learner, or the same
    held-out learner). ``statistic(columns, counts)`` computes the figure with learner ``i`` counted
    ``counts[i]`` times (``weighted_mean``, ``weighted_median``; a difference or ratio of them).
    Each draw resamples whole learners with replacement and scores every column on that same draw,
    so what the columns share (which learners happen to be quick) cancels. Returns the observed
    figure, the percentile interval and whether it excludes zero (draws giving NaN, such as an
    infinite median minus another, are left out and counted).
    """
    columns = [np.asarray(column, dtype=np.float64) for column in columns]
    n_learners = len(columns[0]) if columns else 0
    if any(len(column) != n_learners for column in columns):
        raise ValueError("every column needs one row per learner, the same learners")
    if n_learners < 2:
        raise ValueError("bootstrap needs at least two learners")
    observed = float(statistic(columns, np.ones(n_learners)))
    rng = np.random.default_rng(seed)
    values = np.empty(draws)
    for draw in range(draws):
        counts = np.bincount(rng.integers(0, n_learners, n_learners), minlength=n_learners).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[draw] = statistic(columns, counts)
    finite = values[np.isfinite(values)]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (np.nan, np.nan)
    return {
        "estimate": observed,
        "interval": [float(low), float(high)],
        "excludes_zero": bool(low > 0 or high < 0),
        "level": level,
        "draws": draws,
        "undefined_draws": int(draws - len(finite)),
        "learners": n_learners,
    }
