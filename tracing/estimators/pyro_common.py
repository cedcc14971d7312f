"""Shared plumbing of the pyro estimators (hbkt, psikt): threads and seeds, padded
learner batches, the SVI loop and the one-file artifact format. No Django here.

Pyro keeps parameters in a global store by default; in a long-lived worker that
leaks between fits. Every fit here runs inside :func:`fitting_context`, which
turns on ``module_local_params`` so parameters live on the ``PyroModule`` that
owns them, and the loss is optimised with a plain torch optimiser.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyro
import torch
from pyro.nn import PyroParam
from torch.distributions import constraints

from tracing.data import Dataset
from tracing.estimators.base import Progress, no_progress
from tracing.estimators.torch_threads import torch_threads

_FITTING = threading.RLock()
"""Pyro's settings and torch's thread count are process-wide, and a context that ends restores them under
any other still running: fits and trait inferences of one process (the embedded default runs both on
background threads of the web process) take turns."""


@contextlib.contextmanager
def fitting_context(*, threads: int, seed: int | None = None) -> Iterator[None]:
    """Run torch on ``threads`` CPU threads with module-local pyro params; seed torch and pyro.

    The previous thread count and pyro setting are restored on exit so a worker
    that runs several fits in turn is left as it was found. One such context at a time per process.
    """
    with _FITTING, torch_threads(threads):
        if seed is not None:
            pyro.set_rng_seed(int(seed))
        with pyro.settings.context(module_local_params=True):
            yield


def pyro_param(init: torch.Tensor, constraint: constraints.Constraint = constraints.real) -> torch.Tensor:
    """A learnable attribute of a ``PyroModule`` (``PyroParam``), typed as the tensor the attribute
    reads back as: the module's ``__setattr__`` turns it into a parameter, out of a type checker's sight."""
    return cast(torch.Tensor, PyroParam(init, constraint=constraint))


@dataclass(frozen=True)
class Padded:
    """Learner sequences padded to a common length T, for the batched filters.

    ``item`` (B, T) int64, ``correct`` (B, T) float, ``elapsed`` (B, T) float: time
    since the learner's previous row in model units (0 at the first row), ``mask``
    (B, T) bool marks real rows, ``rows`` (B, T) int64 the row index in the source
    Dataset (-1 on padding), ``learners`` (B,) the source learner indices.
    """

    item: np.ndarray
    correct: np.ndarray
    elapsed: np.ndarray
    mask: np.ndarray
    rows: np.ndarray
    learners: np.ndarray

    def torch(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        return {
            "item": torch.as_tensor(self.item, dtype=torch.long),
            "correct": torch.as_tensor(self.correct, dtype=dtype),
            "elapsed": torch.as_tensor(self.elapsed, dtype=dtype),
            "mask": torch.as_tensor(self.mask, dtype=torch.bool),
        }


def pad_learners(
    data: Dataset, learners: Sequence[int] | np.ndarray, *, unit: float, max_length: int | None = None
) -> Padded:
    """Pad the rows of ``learners`` (indices into ``data``) to their longest sequence.

    ``unit`` is the model's time unit in the timestamps' units (seconds, or steps when
    the data has no clock). ``max_length`` keeps only each learner's first rows.
    """
    learners = np.asarray(learners, dtype=np.int64)
    lengths = data.lengths[learners] if len(learners) else np.zeros(0, dtype=np.int64)
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    width = int(lengths.max()) if len(lengths) and lengths.max() > 0 else 1
    batch = len(learners)
    position = np.arange(width)
    mask = position[None, :] < lengths[:, None]
    rows = np.where(mask, data.offsets[learners][:, None] + position[None, :], -1)
    safe = np.where(mask, rows, 0)
    item = np.where(mask, data.item[safe] if data.n_rows else 0, 0).astype(np.int64)
    correct = np.where(mask, data.correct[safe] if data.n_rows else 0, 0).astype(np.float64)
    times = data.timestamp[safe] if data.n_rows else np.zeros((batch, width))
    elapsed = np.zeros((batch, width), dtype=np.float64)
    if width > 1:
        elapsed[:, 1:] = np.maximum(np.diff(times, axis=1), 0.0) / unit
    elapsed = np.where(mask, elapsed, 0.0)
    return Padded(item=item, correct=correct, elapsed=elapsed, mask=mask, rows=rows, learners=learners)


def batch_rows(padded: dict[str, torch.Tensor], index: np.ndarray) -> dict[str, torch.Tensor]:
    """Rows ``index`` of a padded batch (``Padded.torch()``), cut to the longest real sequence among them."""
    picked = torch.as_tensor(index, dtype=torch.long)
    width = max(1, int(padded["mask"][picked].sum(1).max()))
    return {name: value[picked][:, :width] for name, value in padded.items()}


def time_unit(data: Dataset, seconds: float) -> float:
    """Model time unit in timestamp units: ``seconds`` on clocked data, one step otherwise.

    Untimed formats store the step number as the timestamp (one second a step), so
    there the unit is one step and elapsed time counts answers.
    """
    return float(seconds) if data.has_time else 1.0


def minibatches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of learner minibatches, each of similar sequence lengths, in random order.

    The filters step through time to the longest sequence of a batch, so grouping
    learners of like length cuts the padded steps; a jitter on the sort keeps batches
    from being the same every epoch.
    """
    jitter = rng.uniform(0.0, 0.3 * max(float(np.std(lengths)), 1.0), size=len(lengths))
    order = np.argsort(lengths + jitter, kind="stable")
    batches = [np.sort(order[start : start + batch_size]) for start in range(0, len(order), batch_size)]
    return [batches[index] for index in rng.permutation(len(batches))]


class RowAdam:
    """Adam over parameters whose first dimension indexes learners, each row with its own moments and
    step count, moved only on the steps whose minibatch holds it.

    Why: with torch's Adam, a learner's traits keep moving by momentum on every step of a pass,
    though its gradient is zero outside its own minibatch, so how far a pass moves it depends on the
    number of minibatches and on where its own falls in the pass. Here each row is exactly Adam
    (torch's update, defaults) run on that learner's loss alone, one step per pass: rows outside
    the batch are left as they were, bit for bit.
    """

    def __init__(
        self,
        parameters: list[torch.nn.Parameter],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        rows = {int(parameter.shape[0]) for parameter in parameters}
        if len(rows) != 1:
            raise ValueError(f"RowAdam needs parameters of one leading (learner) size, got {sorted(rows)}")
        self.parameters, self.lr, self.betas, self.eps = parameters, lr, betas, eps
        self.first = [torch.zeros_like(parameter) for parameter in parameters]
        self.second = [torch.zeros_like(parameter) for parameter in parameters]
        self.count = torch.zeros(rows.pop(), dtype=torch.float64)

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self, rows: np.ndarray) -> None:
        index = torch.as_tensor(rows, dtype=torch.long)
        self.count[index] += 1
        beta1, beta2 = self.betas
        count = self.count[index]
        for parameter, first, second in zip(self.parameters, self.first, self.second):
            if parameter.grad is None:
                continue
            shape = (-1,) + (1,) * (parameter.dim() - 1)
            grad = parameter.grad[index]
            first[index] = beta1 * first[index] + (1 - beta1) * grad
            second[index] = beta2 * second[index] + (1 - beta2) * grad * grad
            corrected1 = (1 - beta1**count).to(parameter.dtype).reshape(shape)
            corrected2 = (1 - beta2**count).to(parameter.dtype).reshape(shape)
            denominator = (second[index] / corrected2).sqrt() + self.eps
            parameter[index] -= self.lr * (first[index] / corrected1) / denominator


def run_svi(
    loss: Callable[[np.ndarray], torch.Tensor],
    parameters: list[torch.nn.Parameter],
    *,
    n_learners: int,
    batch_size: int,
    steps: int,
    learning_rate: float,
    seed: int,
    progress: Progress | None,
    lengths: np.ndarray,
    stage: str = "svi",
    per_learner: bool = False,
) -> list[float]:
    """Minimise ``loss(learner_indices)`` (a minibatch ELBO loss) with Adam over length-bucketed minibatches.

    ``per_learner``: every parameter is a per-learner table (first dimension the learner) and the
    loss a sum of per-learner terms, optimised by :class:`RowAdam` (each learner its own Adam).
    Returns the loss of every step divided by ``n_learners`` (a per-learner figure).
    """
    progress = progress or no_progress
    optimiser: torch.optim.Adam | RowAdam = (
        RowAdam(parameters, lr=learning_rate) if per_learner else torch.optim.Adam(parameters, lr=learning_rate)
    )
    rng = np.random.default_rng(seed)
    queue: list[np.ndarray] = []
    losses: list[float] = []
    report_every = max(1, steps // 50)
    for step in range(steps):
        if not queue:
            queue = minibatches(np.asarray(lengths, dtype=np.float64), batch_size, rng)
        index = queue.pop()
        optimiser.zero_grad()
        value = loss(index)
        value.backward()
        if isinstance(optimiser, RowAdam):
            optimiser.step(index)
        else:
            optimiser.step()
        losses.append(float(value.detach()) / n_learners)
        if step % report_every == 0 or step == steps - 1:
            progress(stage, (step + 1) / steps)
    return losses


def save_artifact(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """One .npz file: the arrays plus a JSON document under the key ``meta``."""
    buffer = io.BytesIO()
    named: dict[str, Any] = arrays  # numpy's stub fears a key named allow_pickle among them
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **named)
    Path(path).write_bytes(buffer.getvalue())


def load_artifact(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(Path(path).read_bytes())) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    return meta, arrays
