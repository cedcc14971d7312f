"""Hierarchical Bayesian Knowledge Tracing in pyro: learner-specific learning and prior traits.

Generative model, learner l, skill k, the learner's rows n on items j with skills S_j:

    (u_l, v_l) ~ Normal(0, diag(tau_learn, tau_prior))          (course population)
    learn_lk = sigmoid(lambda_k + u_l),  prior_lk = sigmoid(pi_k + v_l)
    known_0^k ~ Bernoulli(prior_lk)
    y_n | known ~ Bernoulli(1 - slip_k if known^k else guess_k)   for each k in S_j
    after the answer, known^k <- known^k or Bernoulli(learn_lk)   for k in S_j (no forgetting)

so each learner's learning rate and prior are logit-normal draws around per-skill
population means lambda_k, pi_k with learned spreads tau. The hidden chain of each
(learner, skill) is marginalised exactly by the forward algorithm (two states) in
torch; SVI fits q(u_l, v_l) Normal per learner, minibatched over learners, with
point estimates of lambda, pi, guess, slip (guess, slip < 0.5 to keep "known" the
better state) and tau. A multi-skill item is seen by each of its skills' chains (as
pyBKT duplicates such rows); its predicted P(correct) is the mean over its skills.

New learners at predict/update time use the population median (u = v = 0); learners
seen in the fit use their posterior means, and ``predict_proba`` reads each sequence as
that learner's history from the start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceMeanField_ELBO
from pyro.nn import PyroModule
from torch.distributions import constraints

from tracing.data import Dataset
from tracing.estimators import hyper
from tracing.estimators.base import Estimator, LearnerState, Progress, no_progress
from tracing.estimators.pyro_common import (
    batch_rows,
    fitting_context,
    load_artifact,
    pad_learners,
    pyro_param,
    run_svi,
    save_artifact,
    time_unit,
)

_EDGE = 1e-6


def forward_filter(
    course: dict[str, torch.Tensor],
    offsets: torch.Tensor,
    batch: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward algorithm over a padded batch: (log-likelihood (B,), P(correct) (B, T), P(known) (B, K)).

    ``course``: ``learn_logit``, ``prior_logit``, ``guess``, ``slip`` (K,), ``share`` (J, K)
    (1/|S_j| on the item's skills), ``practised`` (J, K) 0/1, ``base`` () for items with
    no skill. ``offsets`` (B, 2) are the learners' (u, v).
    """
    item, correct, mask = batch["item"], batch["correct"], batch["mask"]
    live = mask.to(offsets.dtype)
    learn = torch.sigmoid(course["learn_logit"] + offsets[:, :1])  # (B, K)
    known = torch.sigmoid(course["prior_logit"] + offsets[:, 1:])
    guess, slip = course["guess"], course["slip"]
    # Item rows are gathered step by step: (B, T, K) gathers took gigabytes on long sequences.
    no_skill = (course["practised"].sum(-1) == 0).to(offsets.dtype)[item]  # (B, T)
    log_likelihood = torch.zeros(item.shape[0], dtype=offsets.dtype)
    probabilities = []
    for step in range(item.shape[1]):
        right = correct[:, step, None]
        on = course["practised"][item[:, step]] * live[:, step, None]  # (B, K)
        chance = torch.clamp(known * (1 - slip) + (1 - known) * guess, _EDGE, 1 - _EDGE)  # (B, K)
        probabilities.append((course["share"][item[:, step]] * chance).sum(-1) + no_skill[:, step] * course["base"])
        log_likelihood = log_likelihood + (on * (right * chance.log() + (1 - right) * (1 - chance).log())).sum(-1)
        # Exact Bayes ratios with their own denominators: the clamped ``chance`` could push a
        # posterior past 1 when slip is near 0 on long drills.
        after_right = known * (1 - slip) / (known * (1 - slip) + (1 - known) * guess + _EDGE)
        after_wrong = known * slip / (known * slip + (1 - known) * (1 - guess) + _EDGE)
        posterior = torch.clamp(right * after_right + (1 - right) * after_wrong, 0.0, 1.0)
        posterior = posterior + (1 - posterior) * learn
        known = on * posterior + (1 - on) * known
    return log_likelihood, torch.stack(probabilities, dim=1), known


class PopulationModel(PyroModule):
    """The generative model with the course-level parameters (module-local)."""

    share: torch.Tensor  # buffers, registered in __init__
    practised: torch.Tensor

    def __init__(self, *, q_matrix: np.ndarray, n_learners: int, base: float) -> None:
        super().__init__()
        n_skills = q_matrix.shape[1]
        self.n_learners = n_learners
        share = q_matrix / np.maximum(q_matrix.sum(axis=1, keepdims=True), 1)
        self.register_buffer("share", torch.as_tensor(share, dtype=torch.float32))
        self.register_buffer("practised", torch.as_tensor(q_matrix, dtype=torch.float32))
        self.base = base
        self.learn_logit = pyro_param(torch.full((n_skills,), -2.0))
        self.prior_logit = pyro_param(torch.full((n_skills,), -1.0))
        self.guess = pyro_param(torch.full((n_skills,), 0.2), constraint=constraints.interval(0.0, 0.5))
        self.slip = pyro_param(torch.full((n_skills,), 0.1), constraint=constraints.interval(0.0, 0.5))
        self.population_scale = pyro_param(torch.full((2,), 0.5), constraint=constraints.positive)

    def course(self) -> dict[str, torch.Tensor]:
        return {
            "learn_logit": self.learn_logit,
            "prior_logit": self.prior_logit,
            "guess": self.guess,
            "slip": self.slip,
            "share": self.share,
            "practised": self.practised,
            "base": torch.tensor(self.base),
        }

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        with pyro.plate("learners", self.n_learners, subsample=index):
            offsets = pyro.sample("traits", dist.Normal(torch.zeros(2), self.population_scale).to_event(1))
            log_likelihood, _, _ = forward_filter(self.course(), offsets, batch)
            pyro.factor("answers", log_likelihood)


class LearnerGuide(PyroModule):
    def __init__(self, n_learners: int) -> None:
        super().__init__()
        self.loc = pyro_param(torch.zeros(n_learners, 2))
        self.scale = pyro_param(torch.full((n_learners, 2), 0.1), constraint=constraints.positive)

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        with pyro.plate("learners", self.loc.shape[0], subsample=index):
            pyro.sample("traits", dist.Normal(self.loc[index], self.scale[index]).to_event(1))


class HierarchicalBKT(Estimator):
    """BKT with learner-specific learning rate and prior drawn from a course population.

    Hyper-parameters: ``steps`` SVI steps of ``batch_size`` learners at ``learning_rate``;
    ``max_length`` first rows of each learner used in fitting (prediction reads all);
    ``threads`` torch CPU threads (default env TRACING_TORCH_THREADS or 2).
    """

    kind = "hbkt"
    PARAMS = hyper.HBKT

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self.steps, self.batch_size, self.learning_rate = config["steps"], config["batch_size"], config["learning_rate"]
        self.max_length, self.threads = config["max_length"], config["threads"]
        self.q_matrix = np.zeros((0, 0), dtype=bool)
        self.arrays: dict[str, np.ndarray] = {}
        self.learner_index: dict[str, int] = {}
        self.losses: list[float] = []
        self.timings: dict[str, float] = {}

    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        progress = progress or no_progress
        started = time.perf_counter()
        self.q_matrix = data.q_matrix.copy()
        self._item_ids, self._skill_ids = data.item_ids, data.skill_ids
        base = float(data.correct.mean()) if data.n_rows else 0.5
        with fitting_context(threads=self.threads, seed=seed):
            model = PopulationModel(q_matrix=data.q_matrix, n_learners=data.n_learners, base=base)
            guide = LearnerGuide(data.n_learners)
            padded = pad_learners(
                data, np.arange(data.n_learners), unit=time_unit(data, 1.0), max_length=self.max_length
            ).torch()
            elbo = TraceMeanField_ELBO()

            def loss(index: np.ndarray) -> torch.Tensor:
                picked = torch.as_tensor(index, dtype=torch.long)
                value: torch.Tensor = elbo.differentiable_loss(model, guide, batch_rows(padded, index), picked)
                return value

            self.losses = run_svi(
                loss,
                list(model.parameters()) + list(guide.parameters()),
                n_learners=data.n_learners,
                batch_size=min(self.batch_size, data.n_learners),
                steps=self.steps,
                learning_rate=self.learning_rate,
                seed=seed,
                progress=progress,
                lengths=np.minimum(data.lengths, self.max_length),
            )
            with torch.no_grad():
                self.arrays = {
                    name: getattr(model, name).double().numpy().copy()
                    for name in ("learn_logit", "prior_logit", "guess", "slip", "population_scale")
                }
                self.arrays["base"] = np.array(base)
                self.arrays["trait_loc"] = guide.loc.double().numpy().copy()
                self.arrays["trait_scale"] = guide.scale.double().numpy().copy()
        self.learner_index = {name: index for index, name in enumerate(data.learner_ids)}
        self.timings = {"fit_seconds": time.perf_counter() - started}
        progress("svi", 1.0)
        return self

    # ----------------------------------------------------------------- prediction

    def _course(self) -> dict[str, torch.Tensor]:
        share = self.q_matrix / np.maximum(self.q_matrix.sum(axis=1, keepdims=True), 1)
        course = {
            name: torch.as_tensor(self.arrays[name], dtype=torch.float64)
            for name in ("learn_logit", "prior_logit", "guess", "slip", "base")
        }
        course["share"] = torch.as_tensor(share, dtype=torch.float64)
        course["practised"] = torch.as_tensor(self.q_matrix, dtype=torch.float64)
        return course

    def _offsets(self, learner_ids: tuple[str, ...]) -> np.ndarray:
        """Posterior mean (u, v) (B, 2): the learner's own if fitted, else the population median 0."""
        offsets = np.zeros((len(learner_ids), 2))
        for position, name in enumerate(learner_ids):
            slot = self.learner_index.get(name)
            if slot is not None:
                offsets[position] = self.arrays["trait_loc"][slot]
        return offsets

    def _run(self, data: Dataset, learners: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        padded = pad_learners(data, learners, unit=1.0)
        with torch.no_grad():
            _, probability, known = forward_filter(
                self._course(), torch.as_tensor(offsets, dtype=torch.float64), padded.torch(torch.float64)
            )
        out = np.full(data.n_rows, np.nan)
        out[padded.rows[padded.mask]] = probability.numpy()[padded.mask]
        return out, known.numpy()

    def predict_proba(self, data: Dataset) -> np.ndarray:
        data = self.aligned(data)
        offsets = self._offsets(data.learner_ids)
        out = np.empty(data.n_rows)
        for chunk in np.array_split(np.arange(data.n_learners), max(1, data.n_learners // 512)):
            if len(chunk):
                probability, _ = self._run(data, chunk, offsets[chunk])
                rows = np.concatenate([np.arange(*data.rows(learner).indices(data.n_rows)) for learner in chunk])
                out[rows] = probability[rows]
        return out

    def final_states(self, data: Dataset) -> list[LearnerState]:
        data = self.aligned(data)
        offsets = self._offsets(data.learner_ids)
        states: list[LearnerState] = []
        for chunk in np.array_split(np.arange(data.n_learners), max(1, data.n_learners // 512)):
            if not len(chunk):
                continue
            _, known = self._run(data, chunk, offsets[chunk])
            for position, learner in enumerate(chunk):
                at = float(data.timestamp[data.offsets[learner + 1] - 1]) if data.lengths[learner] else None
                states.append(self._state(known[position], offsets[learner], at, data.learner_ids[learner]))
        return states

    def _state(self, known: np.ndarray, offsets: np.ndarray, at: float | None, learner: str | None) -> LearnerState:
        return LearnerState(
            mastery=np.asarray(known, dtype=np.float64).copy(),
            memory={"traits": [float(offsets[0]), float(offsets[1])], "learner": learner},
            at=at,
        )

    def initial_state(self) -> LearnerState:
        known = 1 / (1 + np.exp(-self.arrays["prior_logit"]))
        return self._state(known, np.zeros(2), None, None)

    def _chance(self, known: np.ndarray) -> np.ndarray:
        chance = known * (1 - self.arrays["slip"]) + (1 - known) * self.arrays["guess"]
        clipped: np.ndarray = np.clip(chance, _EDGE, 1 - _EDGE)
        return clipped

    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        known = np.asarray(state.mastery, dtype=np.float64)
        offsets = np.asarray(state.memory["traits"], dtype=np.float64)
        on = self.q_matrix[item]
        slip, guess = self.arrays["slip"], self.arrays["guess"]
        after_right = known * (1 - slip) / (known * (1 - slip) + (1 - known) * guess + _EDGE)
        after_wrong = known * slip / (known * slip + (1 - known) * (1 - guess) + _EDGE)
        posterior = np.clip(correct * after_right + (1 - correct) * after_wrong, 0.0, 1.0)
        learn = 1 / (1 + np.exp(-(self.arrays["learn_logit"] + offsets[0])))
        posterior = posterior + (1 - posterior) * learn
        return self._state(np.where(on, posterior, known), offsets, float(at), state.memory.get("learner"))

    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        share = self.q_matrix[items] / np.maximum(self.q_matrix[items].sum(axis=1, keepdims=True), 1)
        no_skill = ~self.q_matrix[items].any(axis=1)
        probability: np.ndarray = share @ self._chance(np.asarray(state.mastery)) + no_skill * float(
            self.arrays["base"]
        )
        return probability

    # ----------------------------------------------------------------- interpretation

    def learner_traits(self, state: LearnerState) -> dict[str, Any]:
        """The learner's offsets on the logit scale of learning rate and prior (mean, sd)."""
        learner = state.memory.get("learner")
        slot = self.learner_index.get(learner) if learner is not None else None
        if slot is None:
            loc, scale = np.zeros(2), self.arrays["population_scale"]
        else:
            loc, scale = self.arrays["trait_loc"][slot], self.arrays["trait_scale"][slot]
        return {
            "learning_offset": {"mean": float(loc[0]), "sd": float(scale[0])},
            "prior_offset": {"mean": float(loc[1]), "sd": float(scale[1])},
        }

    def params(self) -> dict[str, Any]:
        def sigmoid(logits: np.ndarray) -> np.ndarray:
            probability: np.ndarray = 1 / (1 + np.exp(-logits))
            return probability

        def round_(values: np.ndarray) -> dict[str, float]:
            return dict(zip(self._skill_ids, np.round(values, 4).tolist()))

        return {
            "prior": round_(sigmoid(self.arrays["prior_logit"])),
            "learns": round_(sigmoid(self.arrays["learn_logit"])),
            "guesses": round_(self.arrays["guess"]),
            "slips": round_(self.arrays["slip"]),
            "population_scale": {
                "learn_logit": float(self.arrays["population_scale"][0]),
                "prior_logit": float(self.arrays["population_scale"][1]),
            },
            "final_loss": self.losses[-1] if self.losses else None,
            **self.timings,
        }

    # ----------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        meta = {
            "kind": self.kind,
            "hyper": self.hyper_parameters(),
            "item_ids": list(self._item_ids),
            "skill_ids": list(self._skill_ids),
            "learners": sorted(self.learner_index, key=self.learner_index.__getitem__),
            "timings": self.timings,
        }
        save_artifact(path, meta, {**self.arrays, "q_matrix": self.q_matrix})

    @classmethod
    def load(cls, path: Path) -> Self:
        meta, arrays = load_artifact(path)
        model = cls.restored(meta["hyper"])
        model._item_ids, model._skill_ids = tuple(meta["item_ids"]), tuple(meta["skill_ids"])
        model.q_matrix = arrays.pop("q_matrix").astype(bool)
        model.arrays = arrays
        model.learner_index = {name: index for index, name in enumerate(meta["learners"])}
        model.timings = meta.get("timings", {})
        return model
