"""Every registered estimator honours the one interface: fit, predict, update, save, load."""

from __future__ import annotations

import numpy as np
import pytest

from tracing.estimators import ESTIMATORS, get_estimator
from tracing.evaluation import evaluate, evaluate_multistep, split_learners

# Small settings so each kind fits the slice in seconds; defaults are for real data.
FAST_PARAMS: dict[str, dict] = {
    "hbkt": {"steps": 20, "batch_size": 16, "max_length": 60, "threads": 1},
    "psikt": {"steps": 12, "batch_size": 16, "max_length": 50, "threads": 1},
    "dkt": {"hidden": 32, "embedding": 32, "window": 40, "max_epochs": 3, "batch_size": 16, "learning_rate": 0.005},
    "cakt": {
        "frame": 4,
        "recent": 4,
        "channels": 2,
        "hidden": 32,
        "window": 40,
        "max_epochs": 2,
        "batch_size": 16,
        "learning_rate": 0.005,
    },
    "sakt": {"size": 32, "heads": 2, "window": 40, "max_epochs": 3, "batch_size": 16, "learning_rate": 0.005},
}


# Kinds whose fit and checks here take more than about 5 s: marked slow (`make test-quick` leaves them out).
SLOW_KINDS = {"cakt", "psikt", "sakt"}


@pytest.fixture(
    scope="module",
    params=[pytest.param(kind, marks=pytest.mark.slow) if kind in SLOW_KINDS else kind for kind in sorted(ESTIMATORS)],
)
def fitted(request, dbe_slice):
    """Each kind is fitted once per module: the checks below only read it."""
    kind = request.param
    train, test = split_learners(dbe_slice, test_fraction=0.25, seed=1)
    estimator = get_estimator(kind)(**FAST_PARAMS.get(kind, {})).fit(train, seed=0)
    return kind, estimator, test


def test_predict_proba_is_a_probability_per_row(fitted):
    kind, estimator, test = fitted
    probability = estimator.predict_proba(test)
    assert probability.shape == (test.n_rows,)
    assert np.all((probability >= 0) & (probability <= 1)), kind
    result = evaluate(estimator, test)
    assert result["auc"] > 0.55, (kind, result)


def test_online_update_agrees_with_batch_prediction(fitted):
    kind, estimator, test = fitted
    batch = estimator.predict_proba(test)
    for learner in range(min(3, test.n_learners)):
        rows = test.rows(learner)
        state = estimator.initial_state()
        online = []
        for row in range(rows.start, rows.stop):
            online.append(estimator.predict_next(state, test.item[row : row + 1], at=float(test.timestamp[row]))[0])
            state = estimator.update(
                state, item=int(test.item[row]), correct=float(test.correct[row]), at=float(test.timestamp[row])
            )
        np.testing.assert_allclose(online, batch[rows], atol=1e-4, err_msg=kind)
        assert state.mastery.shape == (test.n_skills,)
        assert np.all((state.mastery >= 0) & (state.mastery <= 1))


def test_state_survives_json(fitted):
    kind, estimator, test = fitted
    from tracing.estimators.base import LearnerState

    state = estimator.replay(test, 0)
    again = LearnerState.from_json(state.to_json())
    items = np.arange(min(5, test.n_items))
    np.testing.assert_allclose(
        estimator.predict_next(again, items, at=state.at),
        estimator.predict_next(state, items, at=state.at),
        atol=1e-6,
        err_msg=kind,
    )


def test_save_load_gives_identical_predictions(fitted, tmp_path):
    kind, estimator, test = fitted
    path = tmp_path / f"{kind}.artifact"
    estimator.save(path)
    loaded = type(estimator).load(path)
    np.testing.assert_allclose(loaded.predict_proba(test), estimator.predict_proba(test), atol=1e-6, err_msg=kind)
    assert loaded.item_ids == estimator.item_ids and loaded.skill_ids == estimator.skill_ids


def test_multistep_evaluation_runs(fitted):
    kind, estimator, test = fitted
    result = evaluate_multistep(estimator, test, horizon=10)
    assert result["n"] == 10 * int((test.lengths > 10).sum())


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_bad_params_raise_value_error(kind):
    with pytest.raises((ValueError, TypeError)):
        get_estimator(kind)(no_such_parameter=1)


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="known"):
        get_estimator("nope")
