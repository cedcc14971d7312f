"""The interface every knowledge-tracing model implements (no Django here)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from tracing.data import Dataset
from tracing.estimators.hyper import HyperParameters

Progress = Callable[[str, float], None]
"""Called as ``progress(stage, fraction)`` with fraction in [0, 1] while a fit runs."""


def no_progress(stage: str, fraction: float) -> None:
    return None


@dataclass
class LearnerState:
    """What an estimator knows of one learner between answers.

    ``mastery`` is (n_skills,) float64: P(the learner knows each skill) now.
    ``memory`` is the model's own JSON-serialisable state (a BKT posterior is the
    mastery itself; a deep model keeps its recent history). ``at`` is the time
    (seconds) of the last answer, or None before any.
    """

    mastery: np.ndarray
    memory: dict[str, Any] = field(default_factory=dict)
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mastery": self.mastery.tolist(), "memory": self.memory, "at": self.at}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> LearnerState:
        return cls(
            mastery=np.asarray(payload["mastery"], dtype=np.float64),
            memory=payload.get("memory", {}),
            at=payload.get("at"),
        )


class Estimator(abc.ABC):
    """Fitted offline on many learners; updated online one answer at a time.

    ``PARAMS`` declares the hyper-parameters (constructor keywords) a fit request may
    set, with their bounds (``tracing.estimators.hyper``); ``Estimator(**params)``
    rejects unknown ones with UnknownParamError and out-of-range ones with ParamError
    (both ValueError), and ``configure`` receives the checked values, defaults filled in.
    """

    kind: str = ""
    PARAMS: ClassVar[HyperParameters] = HyperParameters(())

    def __init__(self, **params: Any) -> None:
        self.configure(self.PARAMS.check(params, owner=type(self).__name__))

    @classmethod
    def restored(cls, params: dict[str, Any]) -> Self:
        """An estimator with an artifact's own hyper-parameters: types are checked, bounds are not,
        so a model fitted under earlier (wider) bounds still loads and serves its course."""
        model = cls.__new__(cls)
        model.configure(cls.PARAMS.check(params, owner=cls.__name__, bounded=False))
        return model

    def configure(self, config: dict[str, Any]) -> None:
        """Take the checked hyper-parameters (every declared one) and set up an unfitted model."""
        self.config = config

    def hyper_parameters(self) -> dict[str, Any]:
        """The hyper-parameters this model was built with, every declared one (JSON-serialisable)."""
        return dict(self.config)

    # Prerequisites a course's authors declared, (prerequisite skill id, skill id): a model that learns
    # a graph starts from them (psikt's prior); the others ignore them.
    known_prerequisites: tuple[tuple[str, str], ...] = ()

    def with_known_prerequisites(self, edges: Iterable[tuple[str, str]]) -> Self:
        """The same unfitted model, told the course's declared prerequisites before ``fit``."""
        self.known_prerequisites = tuple((str(source), str(target)) for source, target in edges)
        return self

    @abc.abstractmethod
    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self: ...

    @abc.abstractmethod
    def predict_proba(self, data: Dataset) -> np.ndarray:
        """P(correct) for every row (shape (N,)), using only that learner's earlier rows."""

    @abc.abstractmethod
    def initial_state(self) -> LearnerState:
        """The state of a learner with no answers yet."""

    @abc.abstractmethod
    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        """The state after the learner answered ``item`` (index into the fitted items) at ``at``."""

    @abc.abstractmethod
    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        """P(correct) if the learner in ``state`` answered each of ``items`` (shape (M,)) next, at ``at``."""

    def update_each(self, state: LearnerState, items: np.ndarray, *, correct: float, at: float) -> np.ndarray:
        """(M, K) mastery after answering each of ``items`` (M,) next with ``correct``: row m is
        ``update(state, item=items[m], ...).mastery``. A look-ahead; estimators may vectorise it."""
        rows = [
            np.asarray(self.update(state, item=int(item), correct=correct, at=at).mastery, dtype=np.float64)
            for item in np.asarray(items, dtype=np.int64)
        ]
        return np.stack(rows) if rows else np.zeros((0, len(state.mastery)))

    @abc.abstractmethod
    def save(self, path: Path) -> None:
        """Write a portable artifact (one file) that ``load`` reads back."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: Path) -> Self: ...

    # Set by ``fit`` (and ``load``/``untrained``) to the vocabulary the model was fitted on.
    _item_ids: tuple[str, ...] = ()
    _skill_ids: tuple[str, ...] = ()
    # (n_items, n_skills) bool: item j practises skill k. Set with the vocabulary.
    q_matrix: np.ndarray

    @property
    def item_ids(self) -> tuple[str, ...]:
        """External ids of the items the model was fitted on, in index order."""
        return self._item_ids

    @property
    def skill_ids(self) -> tuple[str, ...]:
        """External ids of the skills that ``LearnerState.mastery`` is indexed by."""
        return self._skill_ids

    @classmethod
    def untrained(cls, *, item_ids: tuple[str, ...], skill_ids: tuple[str, ...], q_matrix: np.ndarray) -> Self:
        """A usable model before any data: textbook defaults over this vocabulary.

        Serves a new course until its first fit; only some kinds offer it.
        """
        raise NotImplementedError(f"{cls.__name__} has no untrained form")

    def aligned(self, data: Dataset) -> Dataset:
        """``data`` re-expressed against the fitted items and skills (models keep a ``q_matrix``).

        A dataset read separately (a test file, one learner's history) numbers its
        items its own way; predictions must use the model's numbering.
        """
        if data.item_ids == self._item_ids:
            return data
        return data.with_vocabulary(self._item_ids, self._skill_ids, self.q_matrix)

    def params(self) -> dict[str, Any]:
        """Fitted parameters worth showing a person (JSON-serialisable)."""
        return {}

    def mastery_at(self, state: LearnerState, at: float) -> np.ndarray:
        """P(knows each skill) at a later time ``at`` with no practice; (n_skills,).

        Models without forgetting return the current mastery.
        """
        return state.mastery

    def learned_prerequisites(self) -> list[tuple[str, str, float]]:
        """Edges (prerequisite skill id, skill id, probability) the model inferred; [] if none."""
        return []

    has_traits: ClassVar[bool] = False
    """Whether the model has per-learner traits (``traits_infer`` re-infers them, the service keeps them)."""

    def learner_traits(self, state: LearnerState) -> dict[str, Any]:
        """A learner's latent traits with uncertainty (e.g. {"forgetting": {"mean":..,"sd":..}}); {} if none."""
        return {}

    def knows_learner(self, learner_id: str) -> bool:
        """Whether the model holds traits of its own for this learner (fitted or absorbed); False if none."""
        return False

    def absorb(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        """Fold ``data``'s learners (new ones, or new answers of known ones) into the fitted model without a
        refit; models with per-learner traits (``has_traits``) implement it."""
        raise NotImplementedError(f"{self.kind} cannot absorb new learners without a refit")

    def traits_infer(self, data: Dataset, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Each learner's traits inferred afresh from ``data`` (their whole history) with the course
        frozen and nothing stored: (posterior means, sds), each (n_learners, n_traits), in the model's
        own parameterisation; None for models without per-learner traits."""
        return None

    def initial_state_with_traits(self, loc: np.ndarray, scale: np.ndarray) -> LearnerState:
        """The state before any answer of a learner whose traits' posterior is (``loc``, ``scale``), as
        ``traits_infer`` gives them; models without traits ignore them."""
        return self.initial_state()

    def traits_words(self, state: LearnerState) -> list[str]:
        """The learner's traits in plain words for a teacher, with how sure the model is; [] if none."""
        return []

    def replay(self, data: Dataset, learner: int) -> LearnerState:
        """The state after every row of one learner, by successive updates."""
        state = self.initial_state()
        for row in range(*data.rows(learner).indices(data.n_rows)):
            state = self.update(
                state, item=int(data.item[row]), correct=float(data.correct[row]), at=float(data.timestamp[row])
            )
        return state

    def final_states(self, data: Dataset) -> list[LearnerState]:
        """The state of every learner after all their rows; models may vectorise this."""
        return [self.replay(data, learner) for learner in range(data.n_learners)]


class SkillSeparable(Estimator):
    """An estimator whose fit is independent per skill (BKT's EM), so one fit can be spread over workers:
    each fits a group of skills (``fit_skills``, on the same data and seed) and ``from_parts`` merges the
    groups into the model ``fit`` gives. The parts are JSON-ready, to travel through a result backend."""

    @abc.abstractmethod
    def fit_skills(
        self, data: Dataset, skills: Iterable[int], *, seed: int = 0, progress: Progress | None = None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    def from_parts(self, data: Dataset, parts: Sequence[dict[str, Any]]) -> Self: ...

    @staticmethod
    @abc.abstractmethod
    def skill_shards(q_matrix: np.ndarray, item_answers: np.ndarray, shards: int) -> list[list[int]]:
        """The skills in ``shards`` groups, from the Q-matrix and each item's answer count: the same in
        every worker that reads the same counts."""

    @abc.abstractmethod
    def shard_items(self, q_matrix: np.ndarray, skills: Sequence[int]) -> np.ndarray | None:
        """The items (rows of ``q_matrix``) whose answers a shard of ``skills`` reads; None: every answer."""
