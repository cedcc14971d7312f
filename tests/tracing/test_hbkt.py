"""Hierarchical BKT: the model runs, learns, and separates fast learners from slow ones."""

from __future__ import annotations

import numpy as np
import pytest

pyro = pytest.importorskip("pyro")
torch = pytest.importorskip("torch")

from tracing.estimators.hbkt import HierarchicalBKT, LearnerGuide, PopulationModel, forward_filter  # noqa: E402
from tracing.estimators.pyro_common import fitting_context, pad_learners  # noqa: E402
from tracing.simulate import simulate_learners  # noqa: E402


@pytest.fixture(scope="module")
def simulation():
    # No prerequisites and no forgetting: plain BKT whose learning rate differs by learner.
    return simulate_learners(
        np.zeros((3, 3), dtype=bool),
        n_learners=150,
        n_answers=40,
        learn=0.15,
        forget=0.0,
        trait_spread=0.9,
        frontier_share=0.0,
        review_share=0.0,
        seed=5,
    )


@pytest.fixture(scope="module")
def fitted(simulation):
    return HierarchicalBKT(steps=150, batch_size=50, threads=1).fit(simulation.data, seed=0)


def test_model_and_guide_run_on_a_tiny_batch_without_global_params(simulation):
    data = simulation.data.subset(np.arange(4))
    pyro.clear_param_store()
    with fitting_context(threads=1, seed=0):
        model, guide = PopulationModel(q_matrix=data.q_matrix, n_learners=4, base=0.5), LearnerGuide(4)
        batch = pad_learners(data, np.arange(4), unit=1.0).torch()
        loss = pyro.infer.TraceMeanField_ELBO().differentiable_loss(model, guide, batch, torch.arange(4))
        trace = pyro.poutine.trace(guide).get_trace(batch, torch.arange(4))
    assert trace.nodes["traits"]["value"].shape == (4, 2)
    assert torch.isfinite(loss)
    assert len(pyro.get_param_store()) == 0


def test_forward_filter_is_the_exact_marginal_likelihood():
    # One skill, two answers: enumerate the four hidden paths by hand.
    course = {
        "learn_logit": torch.tensor([0.0]),
        "prior_logit": torch.tensor([-1.0]),
        "guess": torch.tensor([0.2]),
        "slip": torch.tensor([0.1]),
        "share": torch.ones(1, 1),
        "practised": torch.ones(1, 1),
        "base": torch.tensor(0.5),
    }
    batch = {
        "item": torch.zeros(1, 2, dtype=torch.long),
        "correct": torch.tensor([[0.0, 1.0]]),
        "mask": torch.ones(1, 2, dtype=torch.bool),
    }
    log_likelihood, _, _ = forward_filter(course, torch.zeros(1, 2), batch)
    prior, learn, guess, slip = 1 / (1 + np.e), 0.5, 0.2, 0.1
    total = 0.0
    for first in (0, 1):
        p_first = prior if first else 1 - prior
        emit_first = slip if first else 1 - guess
        for second in (0, 1):
            move = (1.0 if second else 0.0) if first else (learn if second else 1 - learn)
            total += p_first * emit_first * move * ((1 - slip) if second else guess)
    assert float(log_likelihood[0]) == pytest.approx(np.log(total), abs=1e-5)


def test_svi_loss_falls(fitted):
    losses = np.asarray(fitted.losses)
    assert losses[-20:].mean() < losses[:10].mean() - 0.5


def test_learner_learning_offsets_track_the_true_learning_rates(fitted, simulation):
    offsets = fitted.arrays["trait_loc"][:, 0]
    correlation = np.corrcoef(offsets, np.log(simulation.learn))[0, 1]
    assert correlation > 0.3, correlation
    assert fitted.arrays["population_scale"][0] > 0.2  # the spread between learners is found


def test_new_learner_starts_from_the_population(fitted):
    state = fitted.initial_state()
    np.testing.assert_allclose(state.mastery, 1 / (1 + np.exp(-fitted.arrays["prior_logit"])))
    traits = fitted.learner_traits(state)
    assert traits["learning_offset"]["mean"] == 0.0
    assert traits["learning_offset"]["sd"] == pytest.approx(float(fitted.arrays["population_scale"][0]))
    known = fitted.learner_traits(fitted.final_states(fitted_data_first(fitted))[0])
    assert known["learning_offset"]["sd"] < traits["learning_offset"]["sd"]


def fitted_data_first(fitted):
    from tracing.data import Dataset

    name = next(iter(fitted.learner_index))
    return Dataset(
        learner=np.zeros(1, dtype=np.int32),
        item=np.zeros(1, dtype=np.int32),
        correct=np.ones(1, dtype=np.float32),
        timestamp=np.zeros(1),
        q_matrix=fitted.q_matrix,
        item_ids=fitted.item_ids,
        skill_ids=fitted.skill_ids,
        learner_ids=(name,),
    )


def test_bad_hyper_parameters_are_rejected():
    with pytest.raises(ValueError):
        HierarchicalBKT(learning_rate=0)
    with pytest.raises(TypeError):
        HierarchicalBKT(no_such_parameter=1)
