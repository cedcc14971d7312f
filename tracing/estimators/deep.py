"""What every deep (torch) knowledge-tracing estimator shares: windowing, the training
loop with early stopping, device and thread handling, inference and the artifact.

A subclass names its hyper-parameters and builds a :class:`TracingNetwork`; this
module does the rest.

Conventions (shared by DKT, CAKT and SAKT):

* Skill level. An item is read through its skills (the Q-matrix row). For an item
  with several skills the network embeds every skill of the item and averages
  the embeddings with equal weights, and reads the item's logit as the equal-
  weight mean of its skills' logits. Each skill ``s`` also has a *pseudo-item*
  ``n_items + s`` (that skill alone): ``LearnerState.mastery[s]`` is the model's
  P(correct) on it.
* Row ``t`` of a learner is predicted from rows ``< t`` only (the first row from
  none), so every row gets a prediction.
* Windows. A learner's rows are read in windows of ``window`` rows. Sequences up
  to ``window`` rows are one window. Longer ones slide by ``window // 2``: row
  ``t >= window`` is predicted with the context of rows ``context_start(t)..t-1``,
  where ``context_start(t) = (t // half - 1) * half``, so it always sees between
  ``half`` and ``window - 1`` earlier rows. Training scores each row exactly
  once, in the window that predicts it (the same windows as inference), so
  training and prediction see the same contexts.
* Batches. A training batch holds about ``batch_size`` windows' worth of
  answers at the mean window length (many short windows or a few long ones,
  ``Windows.batches(balance_rows=True)``), so every answer weighs about the same
  in the optimiser's steps; prediction batches are a fixed count of windows.
* Early stopping. Training stops after ``patience`` epochs without a better
  validation AUC and keeps the best epoch's weights. With ``plateau_decay`` < 1
  (off by default for every model; docs/choices.md has the validation evidence)
  each worse epoch before that also returns to the best weights and optimiser state and multiplies the step
  size by the factor.
* Online. ``LearnerState.memory`` holds the rows of the current context as JSON
  lists; ``update`` appends a row (dropping the oldest half when the context
  moves on) and ``predict_next`` runs the network once over that context, which
  gives exactly what ``predict_proba`` gives for the same history.
* Device. Fitting uses CUDA when ``torch.cuda.is_available()`` at fit time, else
  the CPU; the fitted network then lives on the CPU for prediction and online
  updates (batch-of-one steps are faster there). ``threads`` bounds torch's CPU
  threads while fitting and batch-predicting (``torch_threads``, as the pyro
  estimators do), restoring the previous value after; online calls (one
  learner's window) use one thread, as more only spin.
* Artifact: one ``torch.save`` file of plain containers and tensors (config,
  vocabulary, Q-matrix, state dict), readable with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from tracing.data import Dataset
from tracing.estimators.base import Estimator, LearnerState, Progress
from tracing.estimators.torch_threads import torch_threads
from tracing.evaluation import auc

Batch = dict[str, torch.Tensor]


# ---------------------------------------------------------------- windows


def context_start(row: int, window: int) -> int:
    """First row of the context that predicts a learner's row ``row`` (0-based)."""
    if row < window:
        return 0
    half = window // 2
    return (row // half - 1) * half


def window_spans(length: int, window: int) -> list[tuple[int, int, int]]:
    """Windows ``(start, stop, first_scored)`` covering a learner of ``length`` rows.

    Rows ``start + first_scored .. stop - 1`` are the ones that window predicts;
    together the windows predict every row exactly once.
    """
    if length <= window:
        return [(0, length, 0)]
    half = window // 2
    spans = [(0, window, 0)]
    index = 1
    while (index + 1) * half < length:
        start = index * half
        spans.append((start, min(start + window, length), half))
        index += 1
    return spans


@dataclass
class Windows:
    """Windows cut from a Dataset, ready to batch.

    ``rows[w]`` are the dataset row indices of window ``w`` (shape (length_w,)),
    ``scored[w]`` a bool mask over them of the rows that window predicts.
    """

    rows: list[np.ndarray]
    scored: list[np.ndarray]

    @classmethod
    def cut(cls, data: Dataset, window: int) -> Windows:
        rows: list[np.ndarray] = []
        scored: list[np.ndarray] = []
        for learner in range(data.n_learners):
            offset = int(data.offsets[learner])
            for start, stop, first in window_spans(int(data.lengths[learner]), window):
                rows.append(np.arange(offset + start, offset + stop))
                mask = np.zeros(stop - start, dtype=bool)
                mask[first:] = True
                scored.append(mask)
        return cls(rows, scored)

    def __len__(self) -> int:
        return len(self.rows)

    def batches(
        self, batch_size: int, rng: np.random.Generator | None = None, *, balance_rows: bool = False
    ) -> Iterator[np.ndarray]:
        """Window indices per batch; windows of similar length share a batch (little padding).

        With ``balance_rows`` a batch holds about ``batch_size`` windows of the mean
        length's worth of padded rows instead of ``batch_size`` windows: as many
        batches as before, but each carries a similar number of answers. (A fixed
        window count makes a batch of 3-row windows weigh as much as one of
        200-row windows, so the long learners, who hold most answers, got a few
        Adam steps per epoch and training converged about 4x slower.)
        """
        lengths = np.array([len(r) for r in self.rows])
        order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
        # Stable sort after a shuffle: equal-length windows meet different partners each epoch.
        order = order[np.argsort(lengths[order], kind="stable")]
        if balance_rows and len(order):
            budget = batch_size * float(lengths.mean())
            groups, start = [], 0
            for end in range(1, len(order) + 1):
                # Sorted by length: the padded size of order[start:end + 1] is its count x the last length.
                if end == len(order) or (end + 1 - start) * lengths[order[end]] > budget:
                    groups.append(order[start:end])
                    start = end
        else:
            groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if rng is not None:
            rng.shuffle(groups)
        yield from groups


def validation_split(n_learners: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) learner indices, sorted: the early-stopping carve-out of a fit.

    Public so that a benchmark can hand a reference model the very same learners.
    Fewer than 4 learners, or ``fraction`` 0, give no validation learners.
    """
    everyone = np.arange(n_learners)
    if fraction <= 0 or n_learners < 4:
        return everyone, everyone[:0]
    order = np.random.default_rng(seed).permutation(n_learners)
    n_valid = max(1, int(round(n_learners * fraction)))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


# ---------------------------------------------------------------- skills


def skill_table(q_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skills of every item and pseudo-item, padded: (n_items + n_skills, K) int64 and weights.

    Row ``n_items + s`` is skill ``s`` alone. An item without skills gets a zero
    weight row (its embedding is zero and its logit the network's bias).
    Weights are 1/(number of skills) so embeddings and logits are averaged.
    """
    n_items, n_skills = q_matrix.shape
    full = np.concatenate([q_matrix.astype(bool), np.eye(n_skills, dtype=bool)], axis=0)
    width = max(1, int(full.sum(axis=1).max()) if len(full) else 1)
    skills = np.zeros((len(full), width), dtype=np.int64)
    weights = np.zeros((len(full), width), dtype=np.float32)
    for row, mask in enumerate(full):
        ids = np.flatnonzero(mask)
        skills[row, : len(ids)] = ids
        weights[row, : len(ids)] = 1.0 / max(len(ids), 1)
    return skills, weights


class TracingNetwork(nn.Module):
    """Base of the networks: the item -> skills lookup and the two shared readings.

    Subclasses implement ``forward(batch) -> (B, T) logits`` (row t predicted from
    rows < t, for item ``batch["item"][:, t]``) and ``predict_last(batch, queries)``
    -> (M,) logits of a next row (after a one-learner history, B = 1) for each of
    the ``queries`` items.
    """

    item_skills: torch.Tensor  # buffers, registered in __init__
    item_weights: torch.Tensor

    def __init__(self, q_matrix: np.ndarray) -> None:
        super().__init__()
        skills, weights = skill_table(q_matrix)
        self.n_items, self.n_skills = q_matrix.shape
        # Derived from the Q-matrix kept in the artifact: not part of the state dict.
        self.register_buffer("item_skills", torch.from_numpy(skills), persistent=False)
        self.register_buffer("item_weights", torch.from_numpy(weights), persistent=False)
        # First skill of every item and pseudo-item (-1: none): what "the same concept" means.
        self.primary = np.where(weights[:, 0] > 0, skills[:, 0], -1)

    def interaction_embedding(self, table: nn.Embedding, item: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """(B, T) items and answers -> (B, T, E): the answer-specific skill embeddings, averaged over skills.

        ``table`` has 2 * n_skills rows: skill s answered wrong, then right. A
        score in (0, 1) mixes the two rows linearly.
        """
        skills = self.item_skills[item]  # (B, T, K)
        weights = self.item_weights[item].unsqueeze(-1)  # (B, T, K, 1)
        wrong: torch.Tensor = table(skills)
        right: torch.Tensor = table(skills + self.n_skills)
        score = correct.unsqueeze(-1).unsqueeze(-1)
        return ((score * right + (1.0 - score) * wrong) * weights).sum(dim=-2)

    def skill_embedding(self, table: nn.Embedding, item: torch.Tensor) -> torch.Tensor:
        """(...) items -> (..., E): skill embeddings averaged over the item's skills."""
        embedded: torch.Tensor = table(self.item_skills[item])
        return (embedded * self.item_weights[item].unsqueeze(-1)).sum(dim=-2)

    def read_skills(self, skill_logits: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(..., n_skills) per-skill logits and (...) items -> (...) the item's logit (mean over its skills)."""
        picked = torch.gather(skill_logits, -1, self.item_skills[item])
        return (picked * self.item_weights[item]).sum(dim=-1)

    def predict_last(self, batch: Batch, queries: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def window_extras(self, items: np.ndarray) -> dict[str, np.ndarray]:
        """Per-window inputs beyond item and answer, from the window's items (T,): name -> (T, ...)."""
        return {}


# ---------------------------------------------------------------- the estimator


class DeepEstimator(Estimator):
    """A torch network fitted with Adam, binary cross-entropy and early stopping on held-out learners.

    Constructor keywords: the subclass's ``PARAMS`` (``tracing.estimators.hyper``: the common
    deep ones and the model's own); out-of-range values raise ValueError, unknown ones TypeError.
    After ``fit``, ``history`` lists per epoch the training loss, validation AUC
    and seconds, and ``best_epoch`` the epoch whose weights were kept.
    """

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self.network: TracingNetwork | None = None
        self.q_matrix = np.zeros((0, 0), dtype=bool)
        self.history: list[dict[str, float]] = []
        self.best_epoch = 0

    def build_network(self, q_matrix: np.ndarray) -> TracingNetwork:
        raise NotImplementedError

    @property
    def window(self) -> int:
        return int(self.config["window"])

    # ------------------------------------------------------------ batching

    def _batch(
        self,
        item_rows: list[np.ndarray],
        correct_rows: list[np.ndarray],
        scored_rows: list[np.ndarray] | None = None,
        device: torch.device | str = "cpu",
    ) -> Batch:
        """Pad windows (lists of (T_w,) arrays) into (B, T) tensors; ``mask`` marks real rows."""
        length = max(len(r) for r in item_rows)
        size = len(item_rows)
        item = np.zeros((size, length), dtype=np.int64)
        correct = np.zeros((size, length), dtype=np.float32)
        mask = np.zeros((size, length), dtype=bool)
        scored = np.zeros((size, length), dtype=bool)
        extras: dict[str, list[np.ndarray]] = {}
        network = self._require_fitted()
        for index, (items, answers) in enumerate(zip(item_rows, correct_rows)):
            n = len(items)
            item[index, :n] = items
            correct[index, :n] = answers
            mask[index, :n] = True
            scored[index, :n] = True if scored_rows is None else scored_rows[index]
            for name, value in network.window_extras(np.asarray(items, dtype=np.int64)).items():
                extras.setdefault(name, []).append(value)
        batch: Batch = {
            "item": torch.from_numpy(item),
            "correct": torch.from_numpy(correct),
            "mask": torch.from_numpy(mask),
            "scored": torch.from_numpy(scored),
        }
        for name, values in extras.items():
            padded = np.full((size, length) + values[0].shape[1:], -1, dtype=values[0].dtype)
            for index, value in enumerate(values):
                padded[index, : len(value)] = value
            batch[name] = torch.from_numpy(padded)
        return {name: tensor.to(device) for name, tensor in batch.items()}

    def _window_batch(
        self, data: Dataset, windows: Windows, indices: np.ndarray, device: torch.device | str = "cpu"
    ) -> Batch:
        rows = [windows.rows[i] for i in indices]
        return self._batch(
            [data.item[r] for r in rows], [data.correct[r] for r in rows], [windows.scored[i] for i in indices], device
        )

    # ------------------------------------------------------------ fitting

    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        """Fit on ``data``; early stopping on a ``validation_fraction`` carve-out of its learners."""
        config = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.q_matrix = np.asarray(data.q_matrix, dtype=bool).copy()
        self._item_ids, self._skill_ids = data.item_ids, data.skill_ids
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        with torch_threads(config["threads"]):
            network = self.build_network(self.q_matrix).to(device)
            self.network = network
            train, valid = self._carve(data, seed)
            train_windows = Windows.cut(train, self.window)
            valid_windows = Windows.cut(valid, self.window) if valid is not None else None
            optimiser = torch.optim.Adam(
                network.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"]
            )
            best_auc, waited = -math.inf, 0
            best_state: dict[str, Any] | None = None
            best_optimiser: dict[str, Any] | None = None
            rate = config["learning_rate"]
            self.history = []
            for epoch in range(1, config["max_epochs"] + 1):
                started = time.perf_counter()
                loss = self._train_epoch(train, train_windows, optimiser, rng, device)
                record = {"epoch": epoch, "loss": loss, "learning_rate": rate}
                if valid is not None and valid_windows is not None and len(valid_windows):
                    probability = self._predict_windows(valid, valid_windows, device)
                    record["valid_auc"] = auc(valid.correct, probability)
                    score = record["valid_auc"] if math.isfinite(record["valid_auc"]) else -loss
                else:
                    score = -loss
                record["seconds"] = time.perf_counter() - started
                self.history.append(record)
                if score > best_auc:
                    best_auc, waited, self.best_epoch = score, 0, epoch
                    best_state = copy.deepcopy(network.state_dict())
                    if config["plateau_decay"] < 1.0:
                        best_optimiser = copy.deepcopy(optimiser.state_dict())
                else:
                    waited += 1
                    if (
                        config["plateau_decay"] < 1.0
                        and best_state is not None
                        and best_optimiser is not None
                        and waited < config["patience"]
                    ):
                        # The epoch past the best one moved away from it (on CAKT, overfitting): step
                        # back and go on from there with smaller steps rather than from the worse weights.
                        rate *= config["plateau_decay"]
                        network.load_state_dict(best_state)
                        optimiser.load_state_dict(copy.deepcopy(best_optimiser))
                        for group in optimiser.param_groups:
                            group["lr"] = rate
                if progress:
                    progress("fit", epoch / config["max_epochs"])
                if waited >= config["patience"]:
                    break
            if best_state is not None:
                network.load_state_dict(best_state)
            self.network = network.to("cpu").eval()
        if progress:
            progress("fit", 1.0)
        return self

    def _carve(self, data: Dataset, seed: int) -> tuple[Dataset, Dataset | None]:
        train, valid = validation_split(data.n_learners, self.config["validation_fraction"], seed)
        if len(valid) == 0:
            return data, None
        return data.subset(train), data.subset(valid)

    def _train_epoch(
        self,
        data: Dataset,
        windows: Windows,
        optimiser: torch.optim.Optimizer,
        rng: np.random.Generator,
        device: torch.device,
    ) -> float:
        network = self._require_fitted()
        network.train()
        total, count = 0.0, 0
        for indices in windows.batches(self.config["batch_size"], rng, balance_rows=True):
            batch = self._window_batch(data, windows, indices, device)
            loss, n = self.loss(batch)
            if n == 0:
                continue
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if self.config["gradient_clip"] > 0:
                nn.utils.clip_grad_norm_(network.parameters(), self.config["gradient_clip"])
            optimiser.step()
            total += float(loss.detach()) * n
            count += n
        return total / max(count, 1)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """Mean binary cross-entropy over scored real rows, and their count; padding never enters."""
        logits = self._require_fitted()(batch)
        where = batch["mask"] & batch["scored"]
        count = int(where.sum())
        loss = nn.functional.binary_cross_entropy_with_logits(logits[where], batch["correct"][where])
        return loss, count

    # ------------------------------------------------------------ batch prediction

    @torch.no_grad()
    def _predict_windows(self, data: Dataset, windows: Windows, device: torch.device | str = "cpu") -> np.ndarray:
        network = self._require_fitted().eval()
        out = np.full(data.n_rows, np.nan, dtype=np.float64)
        for indices in windows.batches(max(self.config["batch_size"], 128)):
            batch = self._window_batch(data, windows, indices, device)
            probability = torch.sigmoid(network(batch)).double().cpu().numpy()
            for position, index in enumerate(indices):
                rows, scored = windows.rows[index], windows.scored[index]
                out[rows[scored]] = probability[position, : len(rows)][scored]
        return out

    def _require_fitted(self) -> TracingNetwork:
        if self.network is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return self.network

    def predict_proba(self, data: Dataset) -> np.ndarray:
        """P(correct) per row (N,), each from that learner's earlier rows in its window context."""
        self._require_fitted()
        data = self.aligned(data)
        with torch_threads(self.config["threads"]):
            return self._predict_windows(data, Windows.cut(data, self.window))

    # ------------------------------------------------------------ online

    def initial_state(self) -> LearnerState:
        state = LearnerState(mastery=np.zeros(len(self._skill_ids)), memory={"item": [], "correct": [], "count": 0})
        state.mastery = self._mastery(state.memory)
        return state

    def _history_batch(self, memory: dict[str, Any]) -> Batch:
        items = np.asarray(memory["item"], dtype=np.int64)
        answers = np.asarray(memory["correct"], dtype=np.float32)
        if len(items) == 0:
            # A zero-length window still needs a time axis; the mask says it is empty.
            batch = self._batch([np.zeros(1, dtype=np.int64)], [np.zeros(1, dtype=np.float32)])
            batch["mask"][:] = False
            return batch
        return self._batch([items], [answers])

    @torch.no_grad()
    def _next_logits(self, memory: dict[str, Any], queries: np.ndarray) -> np.ndarray:
        network = self._require_fitted().eval()
        # One learner's window is too small to gain from threads; extra ones only spin.
        with torch_threads(1):
            logits = network.predict_last(self._history_batch(memory), torch.as_tensor(queries, dtype=torch.long))
        return logits.double().numpy()

    def _mastery(self, memory: dict[str, Any]) -> np.ndarray:
        n_items = len(self._item_ids)
        pseudo = n_items + np.arange(len(self._skill_ids))
        return _sigmoid(self._next_logits(memory, pseudo))

    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        memory = state.memory
        items = list(memory["item"]) + [int(item)]
        answers = list(memory["correct"]) + [float(correct)]
        count = int(memory["count"]) + 1
        # The context of the next row (index ``count``) may start later than the stored one.
        drop = context_start(count, self.window) - (count - len(items))
        if drop > 0:
            items, answers = items[drop:], answers[drop:]
        new_memory = {"item": items, "correct": answers, "count": count}
        return LearnerState(mastery=self._mastery(new_memory), memory=new_memory, at=at)

    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        return _sigmoid(self._next_logits(state.memory, items))

    def final_states(self, data: Dataset) -> list[LearnerState]:
        """Every learner's state after all their rows: one context per learner, no replay."""
        data = self.aligned(data)
        states = []
        for learner in range(data.n_learners):
            rows = data.rows(learner)
            count = rows.stop - rows.start
            start = rows.start + context_start(count, self.window)
            memory = {
                "item": data.item[start : rows.stop].astype(int).tolist(),
                "correct": data.correct[start : rows.stop].astype(float).tolist(),
                "count": count,
            }
            at = float(data.timestamp[rows.stop - 1]) if count else None
            states.append(LearnerState(mastery=self._mastery(memory), memory=memory, at=at))
        return states

    # ------------------------------------------------------------ artifact

    def params(self) -> dict[str, Any]:
        return {
            "config": dict(self.config),
            "best_epoch": self.best_epoch,
            "epochs": len(self.history),
            "history": self.history,
        }

    def save(self, path: Path) -> None:
        network = self._require_fitted()
        torch.save(
            {
                "kind": self.kind,
                "config": dict(self.config),
                "item_ids": list(self._item_ids),
                "skill_ids": list(self._skill_ids),
                "q_matrix": torch.from_numpy(self.q_matrix.astype(np.uint8)),
                "state_dict": {name: tensor.cpu() for name, tensor in network.state_dict().items()},
                "best_epoch": self.best_epoch,
                "history": [dict(record) for record in self.history],
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if payload.get("kind") != cls.kind:
            raise ValueError(f"artifact is a {payload.get('kind')!r} model, not {cls.kind!r}")
        config = dict(payload["config"])
        model = cls.restored(config)
        model.q_matrix = payload["q_matrix"].numpy().astype(bool)
        model._item_ids, model._skill_ids = tuple(payload["item_ids"]), tuple(payload["skill_ids"])
        model.network = model.build_network(model.q_matrix)
        model.network.load_state_dict(payload["state_dict"])
        model.network.eval()
        model.best_epoch = int(payload.get("best_epoch", 0))
        model.history = list(payload.get("history", []))
        return model


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    probability: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return probability


def shifted(states: torch.Tensor, initial: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, H) states after each row -> (B, T, H) states before each row (``initial`` or zeros first)."""
    first = torch.zeros_like(states[:, :1]) if initial is None else initial.expand(states.shape[0], 1, -1)
    return torch.cat([first, states[:, :-1]], dim=1)
