"""psikt with ``dynamics="ou"``, the paper's model: the OU transition, trait recovery, online = batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

pyro = pytest.importorskip("pyro")
torch = pytest.importorskip("torch")

from tracing.data import Dataset  # noqa: E402
from tracing.estimators.psikt import PsiKT, drift  # noqa: E402
from tracing.evaluation import split_learners  # noqa: E402

DAY = 86400.0


def _raw(alpha: float, mu: float, sigma: float, gamma: float) -> list[float]:
    return [math.log(alpha), mu, math.log(sigma), math.log(gamma / (1 - gamma)), 0.0]


def test_the_ou_transition_of_a_known_state_is_the_exact_discretisation():
    # From a point mass z_t: z_{t+dt} ~ Normal(level + (z_t - level) e^{-a dt}, sigma^2 / (2a) (1 - e^{-2 a dt})),
    # level = mu + gamma sum_i A_ik z_t^i / K (the paper's prerequisite boost).
    raw = torch.tensor([_raw(0.7, 0.3, 1.2, 0.6), _raw(0.05, -1.0, 0.4, 0.9)], dtype=torch.float64)
    start = torch.tensor([[1.5, -0.5, 2.0], [0.0, 1.0, -2.0]], dtype=torch.float64)
    graph = torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.float64)
    elapsed = torch.tensor([0.8, 3.0], dtype=torch.float64)
    mean, variance = drift(start, torch.zeros_like(start), raw, elapsed, graph)
    for learner, (alpha, mu, sigma, gamma) in enumerate([(0.7, 0.3, 1.2, 0.6), (0.05, -1.0, 0.4, 0.9)]):
        decay = math.exp(-alpha * float(elapsed[learner]))
        z = start[learner].numpy()
        level = mu + gamma * (z @ graph.numpy()) / 3
        np.testing.assert_allclose(mean[learner].numpy(), level + (z - level) * decay, rtol=1e-12)
        np.testing.assert_allclose(variance[learner].numpy(), sigma**2 / (2 * alpha) * (1 - decay**2), rtol=1e-12)
    # Without the graph it is the plain OU, and two steps compose into one (the exact discretisation).
    belief = (start, torch.full_like(start, 0.2))
    once = drift(*belief, raw, elapsed)
    twice = drift(*drift(*belief, raw, 0.3 * elapsed), raw, 0.7 * elapsed)
    for one, two in zip(once, twice):
        np.testing.assert_allclose(one.numpy(), two.numpy(), rtol=1e-12)


def test_the_ou_transition_matches_the_continuous_process_it_discretises():
    # Euler-Maruyama on dz^k = alpha (mu + b^k - z^k) dt + sigma dW with b read from z at the start (the
    # paper's transition holds the prerequisites' level over the step), against drift()'s law.
    rng = np.random.default_rng(0)
    alpha, mu, sigma, gamma, dt = 0.9, 0.5, 0.8, 0.7, 1.5
    graph = np.array([[0.0, 1.0], [0.0, 0.0]])
    start_mean, start_variance = np.array([1.0, -1.0]), np.array([0.3, 0.1])
    paths, substeps = 40_000, 400
    z = start_mean + np.sqrt(start_variance) * rng.standard_normal((paths, 2))
    level = mu + gamma * (z @ graph) / 2
    step = dt / substeps
    for _ in range(substeps):
        z = z + alpha * (level - z) * step + sigma * math.sqrt(step) * rng.standard_normal(z.shape)
    raw = torch.tensor([_raw(alpha, mu, sigma, gamma)], dtype=torch.float64)
    mean, variance = drift(
        torch.as_tensor(start_mean[None, :]),
        torch.as_tensor(start_variance[None, :]),
        raw,
        torch.tensor([dt], dtype=torch.float64),
        torch.as_tensor(graph),
    )
    np.testing.assert_allclose(z.mean(0), mean[0].numpy(), atol=0.02)
    np.testing.assert_allclose(z.var(0), variance[0].numpy(), rtol=0.03)


def simulate_ou(
    n_learners: int, *, n_sessions: int = 12, per_session: int = 5, seed: int = 0
) -> tuple[Dataset, np.ndarray]:
    """Learners answering from the paper's model: (data, true raw traits (n_learners, 5)).

    Three skills (0 -> 1 a prerequisite), two items each with offsets c_j, emission
    Phi(1.5 z + c_j); traits log alpha ~ N(log 0.4/day, 0.6), mu ~ N(0, 0.8), log sigma ~
    N(0, 0.3), gamma 0.8; sessions of ``per_session`` answers a minute apart, sessions
    exponentially spaced (mean 2 days), each transition drawn exactly."""
    rng = np.random.default_rng(seed)
    n_skills, weight = 3, 1.5
    graph = np.zeros((n_skills, n_skills))
    graph[0, 1] = 1.0
    q_matrix = np.repeat(np.eye(n_skills, dtype=bool), 2, axis=0)
    offset = rng.normal(0.0, 0.5, len(q_matrix))
    truth = np.column_stack(
        [
            rng.normal(math.log(0.4), 0.6, n_learners),
            rng.normal(0.0, 0.8, n_learners),
            rng.normal(0.0, 0.3, n_learners),
            np.full(n_learners, math.log(0.8 / 0.2)),
            np.zeros(n_learners),
        ]
    )
    learners, items, answers, times = [], [], [], []
    for learner, (log_alpha, mu, log_sigma, _, _) in enumerate(truth):
        alpha, sigma = math.exp(log_alpha), math.exp(log_sigma)
        z = mu + sigma / math.sqrt(2 * alpha) * rng.standard_normal(n_skills)
        clock = 0.0
        for session in range(n_sessions):
            for answer in range(per_session):
                gap = (rng.exponential(2.0) if session else 0.0) if answer == 0 else 60.0 / DAY
                decay = math.exp(-alpha * gap)
                level = mu + 0.8 * (z @ graph) / n_skills
                spread = math.sqrt(sigma**2 / (2 * alpha) * (1 - decay**2))
                z = level + (z - level) * decay + spread * rng.standard_normal(n_skills)
                clock += gap
                item = int(rng.integers(len(q_matrix)))
                skill = int(np.flatnonzero(q_matrix[item])[0])
                right = rng.random() < 0.5 * math.erfc(-(weight * z[skill] + offset[item]) / math.sqrt(2))
                learners.append(learner)
                items.append(item)
                answers.append(float(right))
                times.append(1e9 + clock * DAY)
    data = Dataset(
        learner=np.asarray(learners, dtype=np.int32),
        item=np.asarray(items, dtype=np.int32),
        correct=np.asarray(answers, dtype=np.float32),
        timestamp=np.asarray(times),
        q_matrix=q_matrix,
        item_ids=tuple(f"i{j}" for j in range(len(q_matrix))),
        skill_ids=tuple(f"s{k}" for k in range(n_skills)),
        learner_ids=tuple(f"l{number}" for number in range(n_learners)),
    )
    return data, truth


@pytest.mark.slow
def test_traits_of_learners_simulated_from_the_ou_model_are_recovered():
    # Measured (seed 0, 300 learners x 60 answers, 250 steps): see the asserts' margins in the messages.
    data, truth = simulate_ou(300, seed=0)
    model = PsiKT(dynamics="ou", steps=250, batch_size=100, learning_rate=0.05, threads=1).fit(data, seed=0)
    loc = model.arrays["trait_loc"]
    level = np.corrcoef(loc[:, 1], truth[:, 1])[0, 1]
    forgetting = np.corrcoef(loc[:, 0], truth[:, 0])[0, 1]
    assert level > 0.7, level
    assert forgetting > 0.2, forgetting
    assert "learning_speed" not in model.learner_traits(model.initial_state())


@pytest.fixture(scope="module")
def ou_fitted(dbe_slice):
    train, test = split_learners(dbe_slice, test_fraction=0.25, seed=1)
    model = PsiKT(dynamics="ou", steps=12, batch_size=16, max_length=50, threads=1).fit(train, seed=0)
    return model, test


def test_ou_online_update_equals_batch_prediction(ou_fitted):
    model, test = ou_fitted
    assert model._course_tensors()["graph"].abs().sum() > 0  # the boost is live: relaxed edges are never 0
    batch = model.predict_proba(test)
    for learner in range(3):
        rows = test.rows(learner)
        state = model.initial_state()
        online = []
        for row in range(rows.start, rows.stop):
            at = float(test.timestamp[row])
            online.append(model.predict_next(state, test.item[row : row + 1], at=at)[0])
            state = model.update(state, item=int(test.item[row]), correct=float(test.correct[row]), at=at)
        np.testing.assert_allclose(online, batch[rows], atol=1e-6)


def test_ou_absorb_traits_infer_and_save_load_keep_the_dynamics(ou_fitted, tmp_path):
    model, test = ou_fitted
    newcomers = test.subset(np.arange(4))
    loc, scale = model.traits_infer(newcomers)
    assert loc.shape == (4, 5) and np.all(scale > 0)
    model.absorb(newcomers, seed=0, steps=3)
    state = model.learner_state(newcomers.learner_ids[0])
    replayed = model.final_states(newcomers.subset([0]))[0]
    np.testing.assert_allclose(state.mastery, replayed.mastery, atol=1e-6)
    path = tmp_path / "ou.psikt"
    model.save(path)
    again = PsiKT.load(path)
    assert again.dynamics == "ou" and again.params()["dynamics"] == "ou"
    np.testing.assert_allclose(again.predict_proba(test), model.predict_proba(test))
    # The jump variant's predictions differ on the same course: the option is live end to end.
    jump = PsiKT.load(path)
    jump.dynamics = "jump"
    assert not np.allclose(jump.predict_proba(test), model.predict_proba(test))
    assert not any("learn" in words for words in model.traits_words(model.initial_state()))


def test_dynamics_is_checked():
    from tracing.estimators.hyper import ParamError

    with pytest.raises(ParamError, match="dynamics must be one of jump, ou"):
        PsiKT(dynamics="brownian")
    with pytest.raises(ParamError):
        PsiKT(dynamics=1)
    assert PsiKT().dynamics == "jump"
