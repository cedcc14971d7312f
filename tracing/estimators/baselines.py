"""Closed-form baselines: a reference for every other estimator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np

from tracing.data import Dataset
from tracing.estimators import hyper
from tracing.estimators.base import Estimator, LearnerState, Progress


class SkillRate(Estimator):
    """P(correct) = smoothed correct rate of the item's skills on the training data.

    Mastery of a skill is the same rate, nudged by the learner's own answers with a
    Beta(prior_strength) posterior, so it moves online but has no learning model.
    """

    kind = "rate"
    PARAMS = hyper.RATE

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self.prior_strength = config["prior_strength"]
        self.rate: np.ndarray = np.zeros(0)
        self.q_matrix: np.ndarray = np.zeros((0, 0), dtype=bool)

    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        skills = data.q_matrix[data.item].astype(np.float64)  # (N, n_skills)
        hits = skills.T @ data.correct.astype(np.float64)
        counts = skills.sum(axis=0)
        overall = float(data.correct.mean()) if data.n_rows else 0.5
        self.rate = (hits + overall) / (counts + 1.0)
        self.q_matrix = data.q_matrix.copy()
        self._item_ids, self._skill_ids = data.item_ids, data.skill_ids
        if progress:
            progress("fit", 1.0)
        return self

    @classmethod
    def untrained(cls, *, item_ids: tuple[str, ...], skill_ids: tuple[str, ...], q_matrix: np.ndarray) -> Self:
        model = cls()
        model.rate = np.full(len(skill_ids), 0.5)
        model.q_matrix = np.asarray(q_matrix, dtype=bool).copy()
        model._item_ids, model._skill_ids = tuple(item_ids), tuple(skill_ids)
        return model

    def _item_probability(self, mastery: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = self.q_matrix[items]
        probability: np.ndarray = (q * mastery).sum(axis=1) / np.maximum(q.sum(axis=1), 1)
        return probability

    def initial_state(self) -> LearnerState:
        return LearnerState(
            mastery=self.rate.copy(),
            memory={"hits": [0.0] * len(self.rate), "counts": [0.0] * len(self.rate)},
        )

    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        hits = np.asarray(state.memory["hits"], dtype=np.float64)
        counts = np.asarray(state.memory["counts"], dtype=np.float64)
        skills = self.q_matrix[item]
        hits[skills] += correct
        counts[skills] += 1.0
        mastery = (self.rate * self.prior_strength + hits) / (self.prior_strength + counts)
        return LearnerState(mastery=mastery, memory={"hits": hits.tolist(), "counts": counts.tolist()}, at=at)

    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        return self._item_probability(state.mastery, np.asarray(items))

    def predict_proba(self, data: Dataset) -> np.ndarray:
        out = np.empty(data.n_rows, dtype=np.float64)
        for _learner, rows in data.sequences():
            state = self.initial_state()
            for row in range(rows.start, rows.stop):
                out[row] = self.predict_next(state, data.item[row : row + 1])[0]
                state = self.update(
                    state, item=int(data.item[row]), correct=float(data.correct[row]), at=float(data.timestamp[row])
                )
        return out

    def params(self) -> dict[str, Any]:
        return {"skill_rate": dict(zip(self._skill_ids, np.round(self.rate, 4).tolist()))}

    def save(self, path: Path) -> None:
        Path(path).write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "prior_strength": self.prior_strength,
                    "rate": self.rate.tolist(),
                    "q_matrix": self.q_matrix.astype(int).tolist(),
                    "item_ids": self._item_ids,
                    "skill_ids": self._skill_ids,
                }
            )
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        payload = json.loads(Path(path).read_text())
        model = cls.restored({"prior_strength": payload["prior_strength"]})
        model.rate = np.asarray(payload["rate"], dtype=np.float64)
        model.q_matrix = np.asarray(payload["q_matrix"], dtype=bool).reshape(len(payload["item_ids"]), -1)
        model._item_ids, model._skill_ids = tuple(payload["item_ids"]), tuple(payload["skill_ids"])
        return model
