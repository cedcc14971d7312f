"""Deep estimators (DKT, CAKT, SAKT): windows, masking, fitting, artifacts, online = batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tracing.estimators.deep as deep
from tracing.estimators.cakt import CAKT, BandedConv3d, recent_same_concept
from tracing.estimators.deep import Windows, context_start, window_spans
from tracing.estimators.dkt import DKT
from tracing.estimators.sakt import SAKT

TINY = {
    DKT: {"hidden": 16, "embedding": 16},
    SAKT: {"size": 16, "heads": 2},
    CAKT: {"frame": 4, "recent": 3, "channels": 2, "hidden": 16},
}
KINDS = list(TINY)


def untrained(cls, data, **params):
    """An estimator with a freshly initialised network over ``data``'s vocabulary (no fit)."""
    estimator = cls(**TINY[cls], **params)
    estimator.q_matrix = data.q_matrix.copy()
    estimator._item_ids, estimator._skill_ids = data.item_ids, data.skill_ids
    estimator.network = estimator.build_network(estimator.q_matrix).eval()
    return estimator


def learners(data, count):
    return data.subset(np.arange(count))


@pytest.mark.parametrize("length", [1, 7, 8, 9, 15, 16, 17, 40, 101])
def test_windows_predict_every_row_once_with_bounded_context(length):
    window = 8
    predicted = np.zeros(length, dtype=int)
    for start, stop, first in window_spans(length, window):
        assert stop - start <= window
        for row in range(start + first, stop):
            predicted[row] += 1
            # The window that predicts a row starts where that row's context starts.
            assert context_start(row, window) == start
            assert row - start < window
            if row >= window:
                assert row - start >= window // 2
    assert np.all(predicted == 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_row_balanced_batches_cover_every_window_once_within_the_row_budget(seed):
    lengths = np.random.default_rng(seed).choice([2, 3, 5, 40, 120, 200], size=500, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    windows = Windows([np.arange(n) for n in lengths], [np.ones(n, dtype=bool) for n in lengths])
    batch_size = 16
    groups = list(windows.batches(batch_size, np.random.default_rng(seed), balance_rows=True))
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(len(lengths)))
    budget = batch_size * lengths.mean()
    padded = np.array([len(group) * lengths[group].max() for group in groups])
    assert np.all((padded <= budget) | (np.array([len(group) for group in groups]) == 1))
    # About as many optimiser steps as fixed-count batches; each batch wastes under one window of budget.
    assert len(lengths) / batch_size * 0.9 <= len(groups) <= 2 * len(lengths) / batch_size
    # The point of it: long windows no longer share a batch with batch_size - 1 others.
    assert max(len(group) for group in groups if lengths[group].max() == 200) < batch_size
    assert max(len(group) for group in groups) > batch_size


@pytest.mark.parametrize("in_channels, out_channels, depth", [(1, 4, 8), (3, 2, 5), (2, 2, 1)])
def test_banded_conv3d_equals_torch_conv3d_forward_and_backward(in_channels, out_channels, depth):
    torch.manual_seed(0)
    ours = BandedConv3d(in_channels, out_channels)
    reference = torch.nn.Conv3d(in_channels, out_channels, 3, padding=1)
    reference.load_state_dict(ours.state_dict())
    volume = torch.randn(3, in_channels, depth, 5, 5, dtype=torch.float64)
    ours, reference = ours.double(), reference.double()
    mine, theirs = volume.clone().requires_grad_(), volume.clone().requires_grad_()
    out, expected = ours(mine), reference(theirs)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(mine.grad, theirs.grad)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad)


def test_recent_same_concept_lists_earlier_rows_oldest_first():
    recent = recent_same_concept(np.array([3, 5, 3, 3, -1, 3, 5]), 2)
    assert recent.tolist() == [[-1, -1], [-1, -1], [-1, 0], [0, 2], [-1, -1], [2, 3], [-1, 1]]


def every_position_curve(network, answers, recent, now, real=None):
    """CAKT's learning-curve feature with the convolution run on every position (no shared empty volume)."""
    batch, queries, count = recent.shape
    padded = torch.cat([answers.new_zeros(batch, 1, answers.shape[-1]), answers], dim=1)
    index = (recent + 1).reshape(batch, queries * count, 1).expand(-1, -1, answers.shape[-1])
    frames = torch.gather(padded, 1, index).reshape(batch, queries, count, -1)
    weight = torch.exp(-torch.nn.functional.softplus(network.decay) * (now.unsqueeze(-1) - recent)) * (recent >= 0)
    volume = (frames * weight.unsqueeze(-1)).reshape(batch * queries, 1, count, network.frame, network.frame)
    return network.convolution(volume).mean(dim=2).reshape(batch, queries, -1)


def test_cakt_shared_empty_volume_leaves_logits_and_gradients_unchanged(assist_slice, monkeypatch):
    train, _ = assist_slice
    estimator = untrained(CAKT, train, window=20)
    with torch.no_grad():
        estimator.network.decay.fill_(-1.0)
    data = learners(train, 6)
    windows = Windows.cut(data, 20)
    batch = estimator._window_batch(data, windows, np.arange(len(windows)))
    first_on_concept = (batch["recent"] < 0).all(dim=-1) & batch["mask"]
    assert first_on_concept.any() and (~batch["mask"]).any()

    def logits_and_gradients():
        estimator.network.zero_grad()
        logits = estimator.network(batch)
        logits[batch["mask"]].sum().backward()
        return logits.detach()[batch["mask"]], [p.grad.clone() for p in estimator.network.parameters()]

    shared, shared_grads = logits_and_gradients()
    monkeypatch.setattr(type(estimator.network), "_curve", every_position_curve)
    full, full_grads = logits_and_gradients()
    torch.testing.assert_close(shared, full, atol=1e-6, rtol=1e-5)
    for got, expected in zip(shared_grads, full_grads):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_plateau_decay_returns_to_the_best_weights_with_half_the_step(assist_slice, monkeypatch):
    train, _ = assist_slice
    scores = iter([0.6, 0.7, 0.65, 0.66, 0.72, 0.5, 0.5, 0.5, 0.5])
    monkeypatch.setattr(deep, "auc", lambda truth, probability: next(scores))
    starts, ends = [], []
    train_epoch = DKT._train_epoch

    def recording(self, *args):
        starts.append({name: t.clone() for name, t in self.network.state_dict().items()})
        loss = train_epoch(self, *args)
        ends.append({name: t.clone() for name, t in self.network.state_dict().items()})
        return loss

    monkeypatch.setattr(DKT, "_train_epoch", recording)
    estimator = DKT(
        **TINY[DKT],
        learning_rate=0.01,
        plateau_decay=0.5,
        patience=3,
        max_epochs=20,
        validation_fraction=0.3,
        threads=1,
    ).fit(learners(train, 10), seed=0)
    # Worse epochs 3, 4, 6, 7 each halve the step; the third worse epoch in a row (8) stops the fit.
    assert [r["learning_rate"] for r in estimator.history] == [
        0.01,
        0.01,
        0.01,
        0.005,
        0.0025,
        0.0025,
        0.00125,
        0.000625,
    ]
    assert estimator.best_epoch == 5
    # Epochs 4 and 5 start from epoch 2's weights, 7 and 8 from epoch 5's; the fit ends on epoch 5's.
    for epoch, best in ((4, 2), (5, 2), (7, 5), (8, 5)):
        for name, tensor in starts[epoch - 1].items():
            torch.testing.assert_close(tensor, ends[best - 1][name], atol=0, rtol=0)
    for name, tensor in estimator.network.state_dict().items():
        torch.testing.assert_close(tensor, ends[4][name], atol=0, rtol=0)
    # Off (DKT's default): the step never changes.
    scores = iter([0.6, 0.7, 0.65, 0.66, 0.72, 0.5, 0.5, 0.5, 0.5])
    plain = DKT(**TINY[DKT], learning_rate=0.01, patience=3, max_epochs=20, validation_fraction=0.3, threads=1).fit(
        learners(train, 10), seed=0
    )
    assert {r["learning_rate"] for r in plain.history} == {0.01} and len(plain.history) == 8


@pytest.mark.parametrize("cls", KINDS)
def test_padding_never_reaches_predictions_or_loss(cls, assist_slice):
    train, _ = assist_slice
    estimator = untrained(cls, train)
    data = learners(train, 3)
    windows = Windows.cut(data, 200)
    indices = np.arange(len(windows))
    batch = estimator._window_batch(data, windows, indices)
    assert batch["item"].shape == (len(windows), max(len(r) for r in windows.rows))
    with torch.no_grad():
        logits = estimator.network(batch)
        loss, count = estimator.loss(batch)
    assert logits.shape == batch["item"].shape
    assert count == data.n_rows
    noisy = {name: tensor.clone() for name, tensor in batch.items()}
    padding = ~noisy["mask"]
    assert padding.any()
    noisy["item"][padding] = 5
    noisy["correct"][padding] = 1.0
    noisy["scored"][padding] = True
    with torch.no_grad():
        noisy_logits = estimator.network(noisy)
        noisy_loss, _ = estimator.loss(noisy)
    torch.testing.assert_close(noisy_logits[batch["mask"]], logits[batch["mask"]])
    # "scored" was switched on in the padding too: the mask alone must keep it out of the loss.
    torch.testing.assert_close(noisy_loss, loss)


@pytest.mark.parametrize("cls", KINDS)
def test_online_update_equals_batch_across_window_moves(cls, assist_slice):
    train, _ = assist_slice
    estimator = untrained(cls, train, window=8)
    long_learner = int(np.argmax(train.lengths))
    data = train.subset([long_learner]).truncate(np.array([30]))
    batch = estimator.predict_proba(data)
    state = estimator.initial_state()
    online = []
    for row in range(data.n_rows):
        online.append(estimator.predict_next(state, data.item[row : row + 1])[0])
        state = estimator.update(state, item=int(data.item[row]), correct=float(data.correct[row]), at=float(row))
        assert len(state.memory["item"]) < 8
    np.testing.assert_allclose(online, batch, atol=1e-5)
    final = estimator.final_states(data)[0]
    assert final.memory == state.memory
    np.testing.assert_allclose(final.mastery, state.mastery, atol=1e-6)


@pytest.mark.parametrize("cls", KINDS)
def test_long_sequences_are_predicted_from_their_context_window(cls, assist_slice):
    train, _ = assist_slice
    window = 10
    estimator = untrained(cls, train, window=window)
    data = train.subset([int(np.argmax(train.lengths))]).truncate(np.array([37]))
    whole = estimator.predict_proba(data)
    for row in (0, 9, 10, 14, 15, 24, 36):
        start = context_start(row, window)
        keep = np.zeros(data.n_rows, dtype=bool)
        keep[start : row + 1] = True
        alone = estimator.predict_proba(data.with_rows(keep))
        assert alone[-1] == pytest.approx(whole[row], abs=1e-5)


def test_dkt_overfits_a_small_real_slice(assist_slice):
    train, _ = assist_slice
    data = learners(train, 12)
    fractions = []
    estimator = DKT(
        hidden=32,
        embedding=32,
        dropout=0.0,
        learning_rate=0.01,
        max_epochs=25,
        patience=25,
        validation_fraction=0.0,
        batch_size=8,
        threads=1,
    )
    estimator.fit(data, seed=0, progress=lambda stage, fraction: fractions.append(fraction))
    losses = [record["loss"] for record in estimator.history]
    # From about the entropy of the answers down to less than two thirds of it.
    assert losses[-1] < 0.67 * losses[0]
    assert len(estimator.history) == 25 and estimator.best_epoch == 25
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("cls", KINDS)
def test_artifact_loads_with_weights_only_and_predicts_the_same(cls, assist_slice, tmp_path):
    train, test = assist_slice
    estimator = cls(**TINY[cls], window=20, max_epochs=1, threads=1).fit(learners(train, 10), seed=3)
    path = tmp_path / "model.pt"
    estimator.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == cls.kind and payload["config"]["window"] == 20
    loaded = cls.load(path)
    subset = learners(test, 4)
    np.testing.assert_array_equal(loaded.predict_proba(subset), estimator.predict_proba(subset))
    assert loaded.params()["config"] == estimator.params()["config"]


def test_fit_is_reproducible_and_restores_threads(assist_slice):
    train, _ = assist_slice
    data = learners(train, 10)
    before = torch.get_num_threads()
    first = DKT(**TINY[DKT], max_epochs=2, threads=1).fit(data, seed=7).predict_proba(data)
    assert torch.get_num_threads() == before
    second = DKT(**TINY[DKT], max_epochs=2, threads=1).fit(data, seed=7).predict_proba(data)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "params",
    [
        {"window": 7},
        {"window": 2},
        {"learning_rate": 0},
        {"dropout": 1.5},
        {"hidden": 0},
        {"batch_size": 2.5},
        {"patience": True},
        {"threads": 0},
        {"validation_fraction": 0.9},
    ],
)
def test_bad_hyper_parameters_raise_value_error(params):
    with pytest.raises(ValueError):
        DKT(**params)


def test_unknown_hyper_parameter_raises_type_error_and_model_checks_its_own():
    with pytest.raises(TypeError):
        CAKT(hiden=3)
    with pytest.raises(ValueError):
        SAKT(size=30, heads=4)
    with pytest.raises(ValueError):
        CAKT(frame=1)


def test_multi_skill_items_average_their_skills(dbe_slice):
    estimator = untrained(DKT, dbe_slice)
    items = np.flatnonzero(dbe_slice.q_matrix.sum(axis=1) > 1)[:3]
    state = estimator.initial_state()
    logits = np.log(state.mastery / (1 - state.mastery))
    expected = [1 / (1 + np.exp(-logits[dbe_slice.q_matrix[item]].mean())) for item in items]
    np.testing.assert_allclose(estimator.predict_next(state, items), expected, atol=1e-5)
