"""PSI-KT: the model runs, learns, forgets, recovers a planted graph and absorbs newcomers cheaply."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

pyro = pytest.importorskip("pyro")
torch = pytest.importorskip("torch")

from tracing.data import Dataset  # noqa: E402
from tracing.estimators.psikt import CourseGuide, CourseModel, PsiKT, drop_implied_edges  # noqa: E402
from tracing.estimators.pyro_common import fitting_context, pad_learners  # noqa: E402
from tracing.evaluation import auc  # noqa: E402
from tracing.simulate import course_order, edge_recovery, random_prerequisite_graph, simulate_learners  # noqa: E402

FAST = {"batch_size": 50, "threads": 1, "learning_rate": 0.05}


@pytest.fixture(scope="module")
def simulation():
    graph = np.zeros((4, 4), dtype=bool)
    graph[0, 1] = graph[1, 2] = graph[0, 3] = True
    return simulate_learners(graph, n_learners=100, n_answers=50, seed=3)


@pytest.fixture(scope="module")
def fitted(simulation):  # about 10 s: the tests that read it are marked slow
    return PsiKT(steps=120, **FAST).fit(simulation.data, seed=0)


def test_model_and_guide_run_on_a_tiny_batch_without_global_params(simulation):
    data = simulation.data.subset(np.arange(3))
    pyro.clear_param_store()
    with fitting_context(threads=1, seed=0):
        model = CourseModel(
            q_matrix=data.q_matrix, item_rate=np.full(data.n_items, 0.6), n_learners=3, edge_prior=0.05, temperature=0.5
        )
        guide = CourseGuide(n_learners=3, n_skills=data.n_skills, population_loc=model.population_loc, temperature=0.5)
        batch = pad_learners(data, np.arange(3), unit=86400.0).torch()
        index = torch.arange(3)
        guide_trace = pyro.poutine.trace(guide).get_trace(batch, index)
        model_trace = pyro.poutine.trace(pyro.poutine.replay(model, trace=guide_trace)).get_trace(batch, index)
        loss = pyro.infer.TraceMeanField_ELBO().differentiable_loss(model, guide, batch, index)
    assert guide_trace.nodes["traits"]["value"].shape == (3, 5)
    assert guide_trace.nodes["graph"]["value"].shape == (4, 4)
    assert model_trace.nodes["answers"]["fn"].batch_shape == (3,)
    assert torch.isfinite(loss)
    assert len(pyro.get_param_store()) == 0  # parameters are module-local: nothing leaks between fits


@pytest.mark.slow
def test_svi_loss_falls(fitted):
    losses = np.asarray(fitted.losses)
    assert losses[-20:].mean() < losses[:10].mean() - 0.5


@pytest.mark.slow
def test_graph_recovers_planted_edges_on_simulated_data():
    # Learners follow a course in a topological order of the planted DAG (tracing.simulate's
    # "course" policy). An edge counts as learned when q(A_ik = 1) >= 0.5. This small graph
    # must come back exactly enough: precision and recall >= 0.75 (a miss or a spurious edge
    # out of three fails), and no planted edge may be learned backwards. The bench checks
    # >= 0.8 on larger graphs. Size chosen for reliability: with 500 learners and 400 steps,
    # five (fit seed, simulation seed) pairs all gave recall 1.0 and precision 0.75 or 1.0;
    # with 300 learners and 300 steps two of four missed an edge.
    graph = random_prerequisite_graph(6, seed=2)
    simulation = simulate_learners(graph, n_learners=500, n_answers=60, policy="course", seed=2)
    model = PsiKT(steps=400, batch_size=100, threads=1, learning_rate=0.05).fit(simulation.data, seed=0)
    found = {(source, target) for source, target, _ in model.learned_prerequisites(0.5)}  # reduced, as stored
    everything = {(source, target) for source, target, _ in model.learned_prerequisites(0.5, reduced=False)}
    assert found <= everything
    recovery = edge_recovery(simulation.edges(), found)
    assert recovery["precision"] >= 0.75 and recovery["recall"] >= 0.75, (recovery, found)
    probability = model.edge_probabilities()
    for source, target in np.argwhere(simulation.graph):
        assert probability[target, source] < 0.2, (source, target, probability[target, source])


@pytest.mark.slow
def test_mastery_decays_towards_the_long_run_level_without_practice(fitted, simulation):
    state = fitted.initial_state()
    at = 1_000_000.0
    for step in range(8):
        state = fitted.update(state, item=0, correct=1.0, at=at + 30.0 * step)
    now = state.mastery[0]
    later = [fitted.mastery_at(state, state.at + days * 86400.0)[0] for days in (1, 10, 100, 10_000)]
    assert now > later[0] > later[1] > later[2], (now, later)
    # The OU drift is a contraction: a fresh learner left alone settles at the same level.
    resting = fitted.mastery_at(dataclasses.replace(fitted.initial_state(), at=0.0), 10_000 * 86400.0)[0]
    assert abs(later[3] - resting) < 0.05 * abs(now - resting) + 1e-3
    traits = fitted.learner_traits(state)
    assert set(traits) >= {"forgetting_rate", "long_run_level", "volatility", "prerequisite_gain", "learning_speed"}
    assert all(trait["sd"] > 0 for trait in traits.values())


@pytest.mark.slow
def test_absorb_fits_newcomers_against_the_frozen_course_posterior(fitted, simulation):
    before = {name: fitted.arrays[name].copy() for name in ("edge_logits", "bias", "gain", "population_loc")}
    newcomers = simulate_learners(simulation.graph, n_learners=20, n_answers=50, seed=9).data
    newcomers = Dataset(
        learner=newcomers.learner,
        item=newcomers.item,
        correct=newcomers.correct,
        timestamp=newcomers.timestamp,
        q_matrix=newcomers.q_matrix,
        item_ids=newcomers.item_ids,
        skill_ids=newcomers.skill_ids,
        learner_ids=tuple(f"new{number}" for number in range(20)),
    )
    fitted.absorb(newcomers, seed=0, steps=60)
    for name, value in before.items():
        np.testing.assert_array_equal(fitted.arrays[name], value, err_msg=name)
    slots = [fitted.learner_index[name] for name in newcomers.learner_ids]
    loc = fitted.arrays["trait_loc"][slots]
    assert np.abs(loc - fitted.arrays["population_loc"]).max() > 1e-3  # the data moved them
    assert fitted.timings["absorb_seconds"] < fitted.timings["fit_seconds"]
    # The stored end state agrees with replaying the learner with its absorbed traits.
    state = fitted.learner_state("new0")
    replayed = fitted.final_states(newcomers.subset([0]))[0]
    np.testing.assert_allclose(state.mastery, replayed.mastery, atol=1e-6)
    # Continual learning: the next period starts from the stored state and posterior.
    more = newcomers.subset([0])
    later = Dataset(
        learner=more.learner,
        item=more.item,
        correct=np.ones_like(more.correct),
        timestamp=more.timestamp + 7 * 86400.0,
        q_matrix=more.q_matrix,
        item_ids=more.item_ids,
        skill_ids=more.skill_ids,
        learner_ids=more.learner_ids,
    )
    scale_before = fitted.arrays["trait_scale"][slots[0]].copy()
    fitted.absorb(later, seed=0, steps=40, learning_rate=0.05)
    assert len(fitted.learner_index) == 100 + 20
    # A block of right answers from a learner already at the ceiling says nothing of its
    # learning speed (the last trait; its sd may wander), but it narrows the others.
    assert fitted.arrays["trait_scale"][slots[0]][:4].mean() < scale_before[:4].mean() + 1e-6


@pytest.mark.slow
def test_default_absorb_matches_a_long_absorb(fitted, simulation):
    """The default absorb (each learner its own Adam, 2 passes at 0.5; all 300 newcomers in one
    minibatch a pass) against a long one (torch's Adam, 60 passes at 0.05, converged; three minibatches
    a pass): P(correct) on the newcomers' rows within 0.05 of it on average (0.034 when written, with
    three minibatches a pass as with one) and its AUC within 0.01 (+0.006 when written); torch's Adam
    on the same budget strays further (0.075 when written)."""
    newcomers = simulate_learners(simulation.graph, n_learners=300, n_answers=40, seed=11).data
    newcomers = dataclasses.replace(newcomers, learner_ids=tuple(f"late{number}" for number in range(300)))

    def absorbed(**setting):
        model = copy.deepcopy(fitted)
        model.absorb(newcomers, seed=0, **setting)
        return model.predict_proba(newcomers)

    reference = absorbed(steps=60, learning_rate=0.05, per_learner=False)
    default = absorbed()
    torch_adam = absorbed(steps=2, learning_rate=0.5, per_learner=False)
    assert np.abs(default - reference).mean() < 0.05
    assert auc(newcomers.correct, default) > auc(newcomers.correct, reference) - 0.01
    assert np.abs(default - reference).mean() < np.abs(torch_adam - reference).mean()


def test_untimed_data_counts_one_unit_per_answer(simulation):
    data = simulation.data.subset(np.arange(10))
    untimed = Dataset(
        learner=data.learner,
        item=data.item,
        correct=data.correct,
        timestamp=np.arange(data.n_rows, dtype=np.float64),
        q_matrix=data.q_matrix,
        item_ids=data.item_ids,
        skill_ids=data.skill_ids,
        learner_ids=data.learner_ids,
        has_time=False,
    )
    model = PsiKT(steps=3, **FAST).fit(untimed, seed=0)
    assert model.unit == 1.0
    assert model.learner_traits(model.initial_state())["forgetting_rate"]["unit"] == "per 1 step"


def test_bad_hyper_parameters_are_rejected():
    with pytest.raises(ValueError):
        PsiKT(edge_prior=0.9)
    with pytest.raises(ValueError):
        PsiKT(steps=0)


@pytest.mark.slow
def test_artifact_from_before_the_learning_speed_trait_still_loads(fitted, simulation, tmp_path):
    from tracing.estimators.pyro_common import load_artifact, save_artifact

    fitted.save(tmp_path / "new.npz")
    meta, arrays = load_artifact(tmp_path / "new.npz")
    for name in ("population_loc", "population_scale", "trait_loc", "trait_scale"):
        arrays[name] = arrays[name][..., :4]
    save_artifact(tmp_path / "old.npz", meta, arrays)
    old = PsiKT.load(tmp_path / "old.npz")
    assert old.arrays["trait_loc"].shape == fitted.arrays["trait_loc"].shape
    probability = old.predict_proba(simulation.data.subset(np.arange(5)))
    assert np.isfinite(probability).all() and ((probability > 0) & (probability < 1)).all()
    assert old.learner_traits(old.initial_state())["learning_speed"]["mean"] > 0


def test_reduced_readout_drops_only_edges_a_stronger_path_implies():
    probability = np.zeros((4, 4))
    probability[0, 1], probability[1, 2], probability[0, 2] = 0.9, 0.8, 0.6  # 0 -> 2 implied by stronger 0 -> 1 -> 2
    probability[2, 3], probability[0, 3] = 0.7, 0.95  # 0 -> 3 stronger than every edge of 0 -> 1 -> 2 -> 3
    kept = drop_implied_edges(probability, probability >= 0.5)
    assert sorted(map(tuple, np.argwhere(kept).tolist())) == [(0, 1), (0, 3), (1, 2), (2, 3)]
    # The same order of visits cannot matter: a path through an edge of equal strength does not count.
    probability[0, 2] = 0.8
    assert drop_implied_edges(probability, probability >= 0.5)[0, 2]


def test_planted_graphs_are_transitively_reduced():
    for seed in range(20):
        graph = random_prerequisite_graph(10, seed=seed).astype(int)
        longer = np.zeros_like(graph)
        power = graph
        for _ in range(len(graph)):
            power = (power @ graph > 0).astype(int)
            longer |= power
        assert not (graph & longer).any(), seed


def test_classes_follow_their_own_topological_orders():
    graph = random_prerequisite_graph(10, seed=0)
    single = simulate_learners(graph, n_learners=6, n_answers=5, policy="course", seed=1)
    assert single.orders.tolist() == [course_order(graph).tolist()]
    classes = simulate_learners(graph, n_learners=6, n_answers=5, policy="course", cohorts=4, seed=1)
    assert classes.orders.shape == (4, 10) and len({tuple(order) for order in classes.orders}) > 1
    for order in classes.orders:
        position = np.argsort(order)
        assert sorted(order) == list(range(10))
        assert all(position[source] < position[target] for source, target in np.argwhere(graph)), order
    # Only the syllabus changes: learners' traits come from the same random stream.
    assert np.array_equal(single.learn, classes.learn)
    with pytest.raises(ValueError):
        simulate_learners(graph, cohorts=0)


def test_declared_prerequisites_are_the_graph_s_prior(simulation):
    """The course's declared edges start likely and keep a higher prior; other edges do not move."""
    data = simulation.data.subset(np.arange(40))
    skills = data.skill_ids
    declared = [(skills[2], skills[3])]  # not one of the planted edges
    plain = PsiKT(steps=5, **FAST).fit(data, seed=0).edge_probabilities()
    told = PsiKT(steps=5, **FAST).with_known_prerequisites(declared + [("nope", skills[0])]).fit(data, seed=0)
    assert told.known_prerequisites[0] == declared[0]
    assert told.edge_probabilities()[2, 3] > 0.5 > plain[2, 3]
    ignored = PsiKT(steps=5, known_edge_prior=0.0, **FAST).with_known_prerequisites(declared).fit(data, seed=0)
    assert ignored.edge_probabilities()[2, 3] == pytest.approx(plain[2, 3])


def test_an_encoder_gives_traits_by_a_forward_pass_and_survives_save_and_load(simulation, tmp_path):
    data = simulation.data.subset(np.arange(60))
    model = PsiKT(steps=30, encoder=True, **FAST).fit(data, seed=0)
    loc, scale = model.encode_traits(data)
    assert loc.shape == (60, 5) and np.all(scale > 0)
    assert np.allclose(model.arrays["trait_loc"][:60], loc)  # fitted learners' traits are the encoder's
    assert np.ptp(loc, axis=0).max() > 1e-3  # learners differ
    path = tmp_path / "m.psikt"
    model.save(path)
    again = PsiKT.load(path)
    assert np.allclose(again.encode_traits(data)[0], loc)
    newcomers = simulation.data.subset(np.arange(60, 70))
    population = np.repeat(model.arrays["population_loc"][None, :], 10, axis=0)
    assert np.allclose(model.predict_proba_given(newcomers, population), model.predict_proba(newcomers))
    with pytest.raises(ValueError, match="no trait encoder"):
        PsiKT(steps=2, **FAST).fit(data, seed=0).encode_traits(data)


def test_traits_infer_reads_the_encoder_when_the_model_has_one(simulation):
    data = simulation.data.subset(np.arange(30))
    model = PsiKT(steps=5, encoder=True, **FAST).fit(data, seed=0)
    loc, scale = model.traits_infer(data.subset(np.arange(3)))
    expected_loc, expected_scale = model.encode_traits(data.subset(np.arange(3)))
    assert np.allclose(loc, expected_loc) and np.allclose(scale, expected_scale)


@pytest.mark.parametrize("dynamics", ["jump", "ou"])
def test_end_states_filter_matches_the_full_filter(simulation, dynamics):
    """The end-state filter (steps only the learners still in their history, longest first) gives
    run_filter's final state, fresh and resumed, learners of every length (none included), to 1e-10."""
    model = PsiKT(steps=3, dynamics=dynamics, **FAST).fit(simulation.data, seed=0)
    rng = np.random.default_rng(0)
    data = simulation.data.subset(np.arange(30))
    data = data.truncate(rng.integers(0, data.lengths + 1))  # lengths from 0 to the whole history
    assert (data.lengths == 0).any() and len(np.unique(data.lengths)) > 10
    learners = rng.permutation(data.n_learners)
    raw = model.arrays["population_loc"][None, :] + rng.normal(0, 0.5, (data.n_learners, 5))
    n_skills = data.n_skills
    starts = (
        rng.random(data.n_learners) < 0.5,
        rng.normal(0, 1, (data.n_learners, n_skills)),
        rng.uniform(0.01, 2, (data.n_learners, n_skills)),
        np.where(data.lengths > 0, rng.uniform(0, 5, data.n_learners), 0.0),  # as absorb's _first_gaps
    )
    for given in (None, starts):
        _, mean, variance = model._filter(data, learners, raw[learners], given)
        new_mean, new_variance = model._end_states(data, learners, raw[learners], given)
        np.testing.assert_allclose(new_mean, mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(new_variance, variance, rtol=0, atol=1e-10)


def test_end_states_run_on_the_fits_thread_count(simulation, monkeypatch):
    """Storing end states ran on torch's default thread count (every core), whose idle threads cost
    CPU seconds on a busy machine: it runs on the estimator's ``threads``, as its SVI does."""
    from tracing.estimators import psikt

    seen = []
    original = psikt.final_knowledge

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(psikt, "final_knowledge", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = PsiKT(steps=2, **FAST).fit(simulation.data.subset(np.arange(20)), seed=0)
        model.absorb(simulation.data.subset(np.arange(20, 30)), seed=0, steps=1)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 1]


@pytest.mark.parametrize("dynamics", ["jump", "ou"])
def test_prefix_filter_gives_run_filter_s_likelihood_gradient_and_state(simulation, dynamics):
    """The absorb's SVI runs on prefix_filter (learners longest first, only those still in their
    history stepped): its log-likelihood, its gradient in the traits (what the absorb's Adam follows)
    and the final state are run_filter's on the same padded batch, fresh and resumed, to 1e-10."""
    from tracing.estimators.psikt import prefix_filter, run_filter

    model = PsiKT(steps=3, dynamics=dynamics, **FAST).fit(simulation.data, seed=0)
    rng = np.random.default_rng(1)
    data = simulation.data.subset(np.arange(25))
    data = data.truncate(np.where(np.arange(25) % 8 == 0, 0, rng.integers(0, data.lengths + 1)))
    assert (data.lengths == 0).any() and len(np.unique(data.lengths)) > 10
    batch = pad_learners(data, rng.permutation(data.n_learners), unit=model.unit).torch(torch.float64)
    course = model._course_tensors()
    traits = model.arrays["population_loc"][None, :] + rng.normal(0, 0.5, (data.n_learners, 5))
    resumed = (
        torch.as_tensor(rng.normal(0, 1, (data.n_learners, data.n_skills))),
        torch.as_tensor(rng.uniform(0.01, 2, (data.n_learners, data.n_skills))),
    )
    for start in (None, resumed):
        results = []
        for method in (run_filter, prefix_filter):
            raw = torch.tensor(traits, requires_grad=True)
            log_likelihood, *rest = method(course, raw, batch, start, dynamics=dynamics)
            log_likelihood.sum().backward()
            results.append((log_likelihood.detach(), raw.grad, rest[-2].detach(), rest[-1].detach()))
        (full, full_grad, full_mean, full_variance), (prefix, prefix_grad, prefix_mean, prefix_variance) = results
        torch.testing.assert_close(prefix, full, rtol=0, atol=1e-10)
        torch.testing.assert_close(prefix_grad, full_grad, rtol=0, atol=1e-10)
        torch.testing.assert_close(prefix_mean, full_mean, rtol=0, atol=1e-10)
        # run_filter's padded steps floor the variance (final_knowledge applies the floor after prefix_filter)
        floor = torch.clamp(prefix_variance, min=1e-6)
        torch.testing.assert_close(floor, full_variance, rtol=0, atol=1e-10)


def test_absorb_with_each_learner_s_own_adam_steps_all_newcomers_at_once(simulation, monkeypatch):
    """Each learner's own Adam moves it by its own gradient whatever else its minibatch holds, so the
    absorb takes up to ABSORB_BATCH learners a step (one step a pass here); torch's Adam over the
    whole table keeps minibatches of max(batch_size, 128)."""
    from tracing.estimators import psikt

    calls = []
    original = psikt.run_svi

    def spy(*args, **kwargs):
        calls.append((kwargs["batch_size"], kwargs["steps"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(psikt, "run_svi", spy)
    model = PsiKT(steps=2, **FAST).fit(simulation.data.subset(np.arange(60)), seed=0)
    calls.clear()
    newcomers = simulation.data.subset(np.arange(60, 100))
    copy.deepcopy(model).absorb(newcomers, seed=0, steps=2)
    monkeypatch.setattr(psikt, "ABSORB_BATCH", 16)
    copy.deepcopy(model).absorb(newcomers, seed=0, steps=2)
    copy.deepcopy(model).absorb(newcomers, seed=0, steps=2, per_learner=False)
    assert calls == [(40, 2), (16, 6), (40, 2)]


def test_an_artifact_from_before_the_own_adam_absorbs_with_today_s_passes(simulation, tmp_path):
    """An artifact saved before absorb ran each learner's own Adam holds that day's default of 10
    passes (torch's Adam at 0.1): loaded, it absorbs with today's default (2). One saved since keeps
    whatever it was given, 10 included."""
    from tracing.estimators.pyro_common import load_artifact, save_artifact

    model = PsiKT(steps=2, absorb_steps=10, **FAST).fit(simulation.data.subset(np.arange(20)), seed=0)
    model.save(tmp_path / "today.npz")
    assert PsiKT.load(tmp_path / "today.npz").absorb_steps == 10
    meta, arrays = load_artifact(tmp_path / "today.npz")
    del meta["absorb_optimiser"]
    save_artifact(tmp_path / "old.npz", meta, arrays)
    old = PsiKT.load(tmp_path / "old.npz")
    assert old.absorb_steps == 2 and old.hyper_parameters()["absorb_steps"] == 2
    meta["hyper"]["absorb_steps"] = 3  # not that day's default: a deliberate setting, kept
    save_artifact(tmp_path / "set.npz", meta, arrays)
    assert PsiKT.load(tmp_path / "set.npz").absorb_steps == 3
