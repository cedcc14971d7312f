"""BKT: EM recovers the parameters that generated the data; the filter is one thing online and offline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracing.data import Dataset, concat
from tracing.estimators.bkt import BKT


def simulate(
    rng: np.random.Generator,
    *,
    n_learners: int,
    steps: int,
    prior,
    learns,
    guesses,
    slips,
    forgets=None,
    item_skill=None,
    prior_by_learner=None,
) -> Dataset:
    """Answers drawn from a BKT with the given per-skill parameters.

    Every learner answers ``steps`` items of each skill, skills interleaved at
    random. ``guesses``/``slips`` are per item; ``item_skill`` (n_items,) gives
    each item's skill (default: item k is skill k). ``prior_by_learner``
    (n_learners, n_skills) overrides the per-skill prior.
    """
    n_skills = len(prior)
    forgets = np.zeros(n_skills) if forgets is None else np.asarray(forgets, dtype=float)
    item_skill = np.arange(n_skills) if item_skill is None else np.asarray(item_skill)
    guesses, slips = np.asarray(guesses, dtype=float), np.asarray(slips, dtype=float)
    prior_by_learner = np.broadcast_to(
        np.asarray(prior if prior_by_learner is None else prior_by_learner), (n_learners, n_skills)
    )
    # (learner, skill, step) arrays: each skill's chain runs on its own.
    item = np.empty((n_learners, n_skills, steps), dtype=np.int64)
    correct = np.empty((n_learners, n_skills, steps))
    known = rng.random((n_learners, n_skills)) < prior_by_learner
    for skill in range(n_skills):
        choices = np.flatnonzero(item_skill == skill)
        item[:, skill] = rng.choice(choices, size=(n_learners, steps))
    for step in range(steps):
        chosen = item[:, :, step]
        correct[:, :, step] = rng.random((n_learners, n_skills)) < np.where(known, 1 - slips[chosen], guesses[chosen])
        stays = rng.random((n_learners, n_skills))
        known = np.where(known, stays >= forgets, stays < np.asarray(learns))
    # Interleave the skills at random, keeping each skill's answers in order.
    keys = np.sort(rng.random((n_learners, n_skills, steps)), axis=2).reshape(n_learners, -1)
    order = np.argsort(keys, axis=1)
    items = np.take_along_axis(item.reshape(n_learners, -1), order, axis=1).ravel()
    answers = np.take_along_axis(correct.reshape(n_learners, -1), order, axis=1).ravel()
    learners = np.repeat(np.arange(n_learners), n_skills * steps)
    n_items = len(item_skill)
    q_matrix = np.zeros((n_items, n_skills), dtype=bool)
    q_matrix[np.arange(n_items), item_skill] = True
    return Dataset(
        learner=np.asarray(learners, dtype=np.int32),
        item=np.asarray(items, dtype=np.int32),
        correct=np.asarray(answers, dtype=np.float32),
        timestamp=np.arange(len(learners), dtype=np.float64),
        q_matrix=q_matrix,
        item_ids=tuple(f"item{i}" for i in range(n_items)),
        skill_ids=tuple(f"skill{k}" for k in range(n_skills)),
        learner_ids=tuple(f"learner{number}" for number in range(n_learners)),
        has_time=False,
    )


TRUE = {
    "prior": [0.3, 0.5, 0.2],
    "learns": [0.15, 0.08, 0.25],
    "guesses": [0.2, 0.25, 0.15],
    "slips": [0.1, 0.08, 0.12],
}


@pytest.fixture(scope="module")
def standard_data():
    return simulate(np.random.default_rng(7), n_learners=2000, steps=15, **TRUE)


def test_em_recovers_planted_parameters(standard_data):
    # 2000 learners x 15 answers per skill: the MLE lies within 0.05 of the truth.
    model = BKT(restarts=3).fit(standard_data, seed=0)
    for name, values in TRUE.items():
        fitted = [model.params()["skills"][f"skill{k}"][name] for k in range(3)]
        np.testing.assert_allclose(fitted, values, atol=0.05, err_msg=name)
    assert all(model.params()["skills"][f"skill{k}"]["forgets"] == 0.0 for k in range(3))


def test_forgetting_variant_recovers_forgets():
    planted = [0.05, 0.15]
    data = simulate(
        np.random.default_rng(3),
        n_learners=600,
        steps=25,
        prior=[0.3, 0.4],
        learns=[0.2, 0.25],
        guesses=[0.15, 0.2],
        slips=[0.1, 0.1],
        forgets=planted,
    )
    model = BKT(forgets=True, restarts=3).fit(data, seed=0)
    fitted = [model.params()["skills"][f"skill{k}"]["forgets"] for k in range(2)]
    np.testing.assert_allclose(fitted, planted, atol=0.05)
    assert fitted[1] > fitted[0]


def test_kt_idem_finds_the_easy_item():
    guesses = np.array([0.1, 0.1, 0.45, 0.1])
    data = simulate(
        np.random.default_rng(11),
        n_learners=800,
        steps=12,
        prior=[0.25],
        learns=[0.1],
        guesses=guesses,
        slips=np.full(4, 0.1),
        item_skill=np.zeros(4, dtype=int),
    )
    model = BKT(multigs=True, restarts=3).fit(data, seed=0)
    fitted = model.params()["skills"]["skill0"]["guesses"]
    assert set(fitted) == {"item0", "item1", "item2", "item3"}
    values = np.array([fitted[f"item{i}"] for i in range(4)])
    np.testing.assert_allclose(values, guesses, atol=0.07)
    assert values[2] - np.delete(values, 2).max() > 0.2
    one_guess = BKT(restarts=3).fit(data, seed=0).params()["skills"]["skill0"]["guesses"]
    assert isinstance(one_guess, float)


def test_prior_per_student_separates_strong_and_weak_learners():
    rng = np.random.default_rng(5)
    strong = rng.random(600) < 0.5
    prior_by_learner = np.where(strong[:, None], 0.9, 0.1) * np.ones((1, 3))
    data = simulate(
        rng,
        n_learners=600,
        steps=10,
        prior=[0.5] * 3,
        learns=[0.1] * 3,
        guesses=[0.15] * 3,
        slips=[0.1] * 3,
        prior_by_learner=prior_by_learner,
    )
    model = BKT(multiprior=True, prior_window=5, prior_bins=2, restarts=3).fit(data, seed=0)
    for skill in range(3):
        priors = model.params()["skills"][f"skill{skill}"]["priors"]
        assert set(priors) == {"none", "0.00-0.50", "0.50-1.00"}
        # The first answers are noisy evidence of the type, so the classes sit inside (0.1, 0.9).
        assert priors["0.50-1.00"] - priors["0.00-0.50"] > 0.25, priors
        assert abs(priors["none"] - 0.5) < 0.1, priors


def test_duplicated_learners_give_the_same_fit(standard_data):
    # Identical sequences are fitted once with a weight: doubling every learner must not move the MLE.
    once = BKT(restarts=2, tol=1e-8).fit(standard_data, seed=1)
    twice = BKT(restarts=2, tol=1e-8).fit(concat(standard_data, standard_data), seed=1)
    assert twice.fit_info["unique_sequences"] == once.fit_info["unique_sequences"]
    for name in ("prior", "learns", "guesses", "slips"):
        np.testing.assert_allclose(getattr(twice, name), getattr(once, name), atol=1e-6, err_msg=name)


def test_bounds_are_respected():
    data = simulate(
        np.random.default_rng(2),
        n_learners=300,
        steps=10,
        prior=[0.3, 0.3],
        learns=[0.1, 0.1],
        guesses=[0.35, 0.4],
        slips=[0.25, 0.3],
    )
    model = BKT(max_guess=0.2, max_slip=0.1, forgets=True, restarts=2).fit(data, seed=0)
    assert np.all(model.guesses <= 0.2 + 1e-12) and np.all(model.slips <= 0.1 + 1e-12)
    for values in (model.prior, model.learns, model.forget_rates, model.guesses, model.slips):
        assert np.all((values > 0) & (values < 1))


def _multi_skill(data: Dataset) -> Dataset:
    """The same answers with item 0 tagged with skills 0 and 1."""
    q_matrix = data.q_matrix.copy()
    q_matrix[0, 1] = True
    return Dataset(
        learner=data.learner,
        item=data.item,
        correct=data.correct,
        timestamp=data.timestamp,
        q_matrix=q_matrix,
        item_ids=data.item_ids,
        skill_ids=data.skill_ids,
        learner_ids=data.learner_ids,
        has_time=data.has_time,
    )


@pytest.mark.parametrize("params", [{}, {"forgets": True}, {"multigs": True, "multiprior": True, "prior_window": 3}])
def test_online_update_equals_offline_filter(standard_data, params):
    data = _multi_skill(standard_data)
    model = BKT(restarts=1, **params).fit(data.subset(np.arange(200)), seed=0)
    test = data.subset(np.arange(700, 712))
    batch = model.predict_proba(test)
    finals = model.final_states(test)
    for learner in range(test.n_learners):
        state = model.initial_state()
        online = []
        for row in range(*test.rows(learner).indices(test.n_rows)):
            online.append(model.predict_next(state, test.item[row : row + 1])[0])
            previous = state.mastery.copy()
            state = model.update(
                state, item=int(test.item[row]), correct=float(test.correct[row]), at=float(test.timestamp[row])
            )
            skills = np.flatnonzero(model.q_matrix[test.item[row]])
            untouched = np.setdiff1d(np.arange(test.n_skills), skills)
            if not params.get("multiprior"):
                np.testing.assert_array_equal(state.mastery[untouched], previous[untouched])
        np.testing.assert_allclose(online, batch[test.rows(learner)], atol=1e-10)
        np.testing.assert_allclose(finals[learner].mastery, state.mastery, atol=1e-10)
        assert finals[learner].memory == json.loads(json.dumps(state.memory))


@pytest.mark.parametrize("params", [{}, {"forgets": True}, {"multigs": True, "multiprior": True, "prior_window": 3}])
def test_the_vectorised_look_ahead_equals_one_update_per_item(standard_data, params):
    from tracing.estimators.base import Estimator

    data = _multi_skill(standard_data)
    model = BKT(restarts=1, **params).fit(data.subset(np.arange(200)), seed=0)
    state = model.initial_state()
    for row in range(4):  # a learner part-way through, so the multiprior memory is not empty
        state = model.update(state, item=int(data.item[row]), correct=float(data.correct[row]), at=float(row))
    items = np.array([2, 0, 1, 2, 3])[: data.n_items]  # multi-skill item 0, a repeat, in any order
    for correct in (0.0, 1.0):
        vectorised = model.update_each(state, items, correct=correct, at=9.0)
        one_by_one = Estimator.update_each(model, state, items, correct=correct, at=9.0)  # the generic loop
        assert vectorised.shape == (len(items), data.n_skills)
        np.testing.assert_allclose(vectorised, one_by_one, rtol=0, atol=1e-15)
    assert not np.allclose(
        model.update_each(state, items, correct=1.0, at=9.0), model.update_each(state, items, correct=0.0, at=9.0)
    )


def test_filter_step_is_bayes_then_transition(standard_data):
    model = BKT(forgets=True, restarts=1).fit(standard_data, seed=0)
    prior, learn, forget = model.prior[0, 0], model.learns[0], model.forget_rates[0]
    guess, slip = model.guesses[0], model.slips[0]
    state = model.update(model.initial_state(), item=0, correct=1.0, at=0.0)
    posterior = prior * (1 - slip) / (prior * (1 - slip) + (1 - prior) * guess)
    assert state.mastery[0] == pytest.approx(posterior * (1 - forget) + (1 - posterior) * learn)
    assert model.predict_next(state, np.array([0]))[0] == pytest.approx(
        state.mastery[0] * (1 - slip) + (1 - state.mastery[0]) * guess
    )


def test_multi_skill_item_predicts_the_mean_of_its_skills(standard_data):
    model = BKT(restarts=1).fit(_multi_skill(standard_data), seed=0)
    mastery = np.array([0.2, 0.9, 0.5])
    from tracing.estimators.base import LearnerState

    state = LearnerState(mastery=mastery)
    pairs = np.arange(model.item_start[0], model.item_start[1])
    per_skill = (
        mastery[model.pair_skill[pairs]] * (1 - model.slips[pairs])
        + (1 - mastery[model.pair_skill[pairs]]) * model.guesses[pairs]
    )
    assert len(pairs) == 2
    assert model.predict_next(state, np.array([0]))[0] == pytest.approx(per_skill.mean())


def test_params_are_json_and_save_load_keeps_variants(standard_data, tmp_path):
    data = _multi_skill(standard_data)
    model = BKT(multigs=True, multiprior=True, forgets=True, restarts=1).fit(data.subset(np.arange(200)), seed=0)
    params = json.loads(json.dumps(model.params()))
    assert set(params["skills"]) == set(data.skill_ids)
    assert set(params["skills"]["skill1"]["guesses"]) == {"item0", "item1"}
    path = tmp_path / "model.bkt"
    model.save(path)
    assert b"pickle" not in path.read_bytes()
    loaded = BKT.load(path)
    assert loaded.hyper_parameters() == model.hyper_parameters()
    test = data.subset(np.arange(700, 720))
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))


@pytest.mark.parametrize(
    "params",
    [
        {"restarts": 0},
        {"restarts": 2.5},
        {"max_iter": 0},
        {"tol": -1.0},
        {"max_guess": 0.0},
        {"max_slip": 1.5},
        {"forgets": "yes"},
        {"multigs": 1},
        {"prior_window": 0},
        {"prior_bins": 0},
        {"max_guess": "0.3"},
    ],
)
def test_bad_params_raise_value_error(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        BKT(**params)


def test_unknown_keyword_raises_type_error():
    with pytest.raises(TypeError):
        BKT(num_fits=5)


def test_untrained_model_serves_a_course_before_its_first_fit():
    q_matrix = np.array([[1, 0], [0, 1], [1, 1]], dtype=bool)
    model = BKT.untrained(item_ids=("a", "b", "ab"), skill_ids=("s", "t"), q_matrix=q_matrix)
    state = model.initial_state()
    np.testing.assert_allclose(state.mastery, [0.1, 0.1])
    np.testing.assert_array_equal(model.q_matrix, q_matrix)
    # P(correct) = P(L) (1 - slip) + (1 - P(L)) guess = 0.1 * 0.9 + 0.9 * 0.2
    np.testing.assert_allclose(model.predict_next(state, np.array([0, 2])), [0.27, 0.27])
    after = model.update(state, item=0, correct=1.0, at=0.0)
    assert after.mastery[0] > state.mastery[0] and after.mastery[1] == pytest.approx(state.mastery[1])
