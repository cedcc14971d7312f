"""Comparison statistics of tracing.evaluation: folds, calibration, paired bootstrap, pyKT's chunks."""

from __future__ import annotations

import numpy as np
import pytest

from tracing.data import Dataset
from tracing.evaluation import (
    auc,
    bootstrap_difference,
    calibration,
    chunked,
    learner_folds,
    mean_std,
)


def _dataset(lengths: list[int]) -> Dataset:
    learner = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    n = len(learner)
    return Dataset(
        learner=learner,
        item=(np.arange(n) % 3).astype(np.int32),
        correct=(np.arange(n) % 2).astype(np.float32),
        timestamp=np.arange(n, dtype=np.float64),
        q_matrix=np.eye(3, dtype=bool),
        item_ids=("a", "b", "c"),
        skill_ids=("a", "b", "c"),
        learner_ids=tuple(f"l{i}" for i in range(len(lengths))),
        has_time=False,
    )


def test_learner_folds_cover_every_learner_once():
    folds = learner_folds(23, folds=5, seed=1)
    assert len(folds) == 5
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(23))
    assert {len(fold) for fold in folds} == {4, 5}
    with pytest.raises(ValueError):
        learner_folds(3, folds=5)


def test_calibration_of_a_calibrated_and_of_an_overconfident_model():
    rng = np.random.default_rng(0)
    probability = rng.uniform(size=200_000)
    correct = (rng.uniform(size=probability.size) < probability).astype(float)
    calibrated = calibration(correct, probability)
    assert calibrated["ece"] < 0.01
    assert len(calibrated["bins"]) == 10 and sum(b["n"] for b in calibrated["bins"]) == probability.size
    # Predicting 0.9 for answers right 60% of the time: ECE 0.3, in one bin.
    overconfident = calibration(np.r_[np.ones(60), np.zeros(40)], np.full(100, 0.9))
    assert overconfident["ece"] == pytest.approx(0.3)
    assert overconfident["bins"] == [
        {"low": 0.9, "high": 1.0, "n": 100, "predicted": pytest.approx(0.9), "observed": pytest.approx(0.6)}
    ]
    assert calibration(np.zeros(0), np.zeros(0))["bins"] == []


def test_bootstrap_difference_finds_a_real_gap_and_not_a_null_one():
    rng = np.random.default_rng(1)
    learners = np.repeat(np.arange(300), 20)
    correct = (rng.uniform(size=learners.size) < 0.6).astype(float)
    informative = np.clip(0.6 + 0.3 * (correct - 0.6) + rng.normal(0, 0.2, learners.size), 0.01, 0.99)
    noise = rng.uniform(size=learners.size)
    result = bootstrap_difference(correct, informative, noise, learners, draws=300, seed=0)
    assert result["auc_difference"] == pytest.approx(auc(correct, informative) - auc(correct, noise))
    assert result["auc_interval"][0] > 0 and result["auc_excludes_zero"]
    assert result["learners"] == 300 and result["rows"] == learners.size
    same = bootstrap_difference(correct, informative, informative, learners, draws=50, seed=0)
    assert same["auc_interval"] == [0.0, 0.0] and not same["auc_excludes_zero"]
    other_noise = rng.uniform(size=learners.size)
    null = bootstrap_difference(correct, noise, other_noise, learners, draws=300, seed=0)
    assert null["auc_interval"][0] < 0 < null["auc_interval"][1]


def test_bootstrap_weighted_auc_handles_ties():
    correct = np.array([1, 0, 1, 0, 1, 0], dtype=float)
    tied = np.array([0.5, 0.5, 0.7, 0.2, 0.5, 0.5])
    result = bootstrap_difference(correct, tied, np.full(6, 0.5), np.arange(6), draws=10)
    assert result["auc_difference"] == pytest.approx(auc(correct, tied) - 0.5)


def test_chunked_restarts_context_every_chunk_and_drops_short_pieces():
    data = _dataset([5, 2, 12])
    pieces, rows, scored = chunked(data, chunk=4, min_rows=3)
    # learner 0: [0-3], [4] dropped; learner 1 (2 rows) dropped; learner 2: [0-3], [4-7], [8-11].
    assert pieces.n_learners == 4
    assert pieces.lengths.tolist() == [4, 4, 4, 4]
    assert rows.tolist() == [0, 1, 2, 3] + list(range(7, 19))
    np.testing.assert_array_equal(pieces.correct, data.correct[rows])
    assert scored.tolist() == [False, True, True, True] * 4
    assert pieces.learner_ids == ("l0#0", "l2#0", "l2#1", "l2#2")


def test_mean_std_leaves_out_nan():
    assert mean_std([1.0, 3.0, float("nan")]) == {"mean": 2.0, "std": pytest.approx(np.sqrt(2)), "n": 2}


def test_bootstrap_learners_pairs_the_columns_and_finds_a_real_gap_only():
    from tracing.evaluation import bootstrap_learners, weighted_mean

    rng = np.random.default_rng(3)
    ability = rng.normal(size=200)  # what the learner brings, shared by both conditions
    first = ability + 0.1 + rng.normal(scale=0.05, size=200)
    second = ability + rng.normal(scale=0.05, size=200)

    def difference(columns, counts):
        return weighted_mean(columns[0], counts) - weighted_mean(columns[1], counts)

    paired = bootstrap_learners([first, second], difference, draws=400)
    assert paired["excludes_zero"] and paired["interval"][0] > 0.05 and paired["interval"][1] < 0.15
    # Paired: much narrower than the spread of learners alone would allow.
    assert paired["interval"][1] - paired["interval"][0] < 0.1
    null = bootstrap_learners([second + rng.normal(scale=0.05, size=200), second], difference, draws=400)
    assert not null["excludes_zero"]
    with pytest.raises(ValueError):
        bootstrap_learners([first, second[:10]], difference)


def test_weighted_median_counts_learners_and_puts_censored_last():
    from tracing.evaluation import weighted_median

    assert weighted_median(np.array([5.0, 1.0, 3.0]), np.ones(3)) == 3.0
    assert weighted_median(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.0, 1.0, 5.0])) == 4.0
    assert weighted_median(np.array([1.0, np.inf, np.inf]), np.ones(3)) == np.inf
    # Same as numpy's upper median on unit counts.
    values = np.random.default_rng(0).integers(0, 50, 31).astype(float)
    assert weighted_median(values, np.ones(31)) == np.quantile(values, 0.5, method="higher")
