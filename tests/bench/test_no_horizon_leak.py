"""No path of the benches lets a multi-step evaluation see the answers it predicts (issue 16).

Each check flips the answers of every learner's horizon (its last rows) and asks for the same
probabilities: a prediction that moved with them has read them. The absorb path is the one
that leaked (bench/psikt.py timed absorb on the very estimator it then evaluated).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pyro")

from bench import models as models_bench
from bench import psikt as psikt_bench
from tracing.data import Dataset, concat
from tracing.estimators import get_estimator
from tracing.evaluation import multistep_predict, split_learners
from tracing.simulate import simulate_learners

HORIZON = psikt_bench.HORIZON


def horizon_flipped(data: Dataset, horizon: int = HORIZON) -> Dataset:
    """``data`` with the answers of each learner's last ``horizon`` rows flipped."""
    position_from_end = data.offsets[data.learner + 1] - np.arange(data.n_rows)
    in_horizon = (position_from_end <= horizon) & (data.lengths[data.learner] > horizon)
    return dataclasses.replace(data, correct=np.where(in_horizon, 1.0 - data.correct, data.correct).astype(np.float32))


@pytest.fixture(scope="module")
def split():
    graph = np.zeros((4, 4), dtype=bool)
    graph[0, 1] = graph[1, 2] = True
    data = simulate_learners(graph, n_learners=60, n_answers=30, seed=5).data
    return split_learners(data, test_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def psikt_fitted(split):
    train, _ = split
    params = {"steps": 15, "batch_size": 45, "threads": 1, "absorb_steps": 3}
    return params, get_estimator("psikt")(**params).fit(train, seed=0)


def test_flipping_changes_only_the_horizon(split):
    _, test = split
    flipped = horizon_flipped(test)
    changed = np.flatnonzero(flipped.correct != test.correct)
    assert len(changed) == HORIZON * np.count_nonzero(test.lengths > HORIZON)
    assert np.array_equal(
        flipped.truncate(test.lengths - HORIZON).correct, test.truncate(test.lengths - HORIZON).correct
    )


@pytest.mark.parametrize(
    "kind, params", [("bkt", {}), ("bkt", {"multigs": True}), ("dkt", {"max_epochs": 1, "threads": 1})]
)
def test_multistep_never_reads_the_horizon(split, kind, params):
    train, test = split
    estimator = get_estimator(kind)(**params).fit(train, seed=0)
    _, seen = multistep_predict(estimator, test, horizon=HORIZON)
    _, flipped = multistep_predict(estimator, horizon_flipped(test), horizon=HORIZON)
    np.testing.assert_array_equal(seen, flipped)


def test_psikt_bench_absorb_timing_then_history_absorbed_never_reads_the_horizon(split, psikt_fitted):
    train, test = split
    params, fitted = psikt_fitted
    outcomes = []
    for data in (test, horizon_flipped(test)):
        estimator = copy.deepcopy(fitted)
        psikt_bench.absorb_timing(estimator, params, train, data)
        outcomes.append(psikt_bench.history_absorbed_predict(estimator, data)[1])
    np.testing.assert_allclose(outcomes[0], outcomes[1], rtol=0, atol=1e-9)


def test_the_old_absorb_timing_did_read_the_horizon(split, psikt_fitted):
    """The check above can fail: absorbing whole sequences first (the old bench) moves the predictions."""
    _, test = split
    _, fitted = psikt_fitted
    outcomes = []
    for data in (test, horizon_flipped(test)):
        estimator = copy.deepcopy(fitted)
        estimator.absorb(data, seed=0)  # the whole sequences, horizon included: the leak
        outcomes.append(psikt_bench.history_absorbed_predict(estimator, data)[1])
    assert np.max(np.abs(outcomes[0] - outcomes[1])) > 1e-3


def test_models_bench_fold_never_reads_the_horizon(split):
    train, test = split
    data = concat(train, test)
    held_out = np.arange(train.n_learners, data.n_learners)
    flipped = concat(train, horizon_flipped(test))  # the training learners' answers as they were
    outcomes = [
        models_bench.fold_run(each, "psikt", held_out, fold=0, quick=True)["arrays"] for each in (data, flipped)
    ]
    for name in ("multistep", "multistep_absorbed"):
        np.testing.assert_allclose(outcomes[0][name], outcomes[1][name], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(outcomes[0]["multistep_correct"], 1.0 - outcomes[1]["multistep_correct"])
