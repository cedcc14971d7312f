"""The one dataset type every estimator reads: learner sequences as flat numpy arrays.

Rows are grouped by learner and, inside a learner, ordered in time. ``offsets``
marks where each learner's rows start, so learner ``l`` owns rows
``offsets[l]:offsets[l + 1]``. Items map to skills through a boolean Q-matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions of many learners.

    Arrays of length N (rows): ``learner`` (int32, 0..n_learners-1), ``item`` (int32,
    0..n_items-1), ``correct`` (float32 in [0, 1]; 1 = correct), ``timestamp``
    (float64, seconds; where the source has no clock it is the step number and
    ``has_time`` is False). ``q_matrix`` is (n_items, n_skills) bool.
    ``item_ids``, ``skill_ids`` and ``learner_ids`` keep the external names.
    """

    learner: np.ndarray
    item: np.ndarray
    correct: np.ndarray
    timestamp: np.ndarray
    q_matrix: np.ndarray
    item_ids: tuple[str, ...]
    skill_ids: tuple[str, ...]
    learner_ids: tuple[str, ...]
    has_time: bool = True
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.learner)
        for name in ("item", "correct", "timestamp"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, learner has {n}")
        if self.q_matrix.shape != (len(self.item_ids), len(self.skill_ids)):
            raise ValueError(
                f"q_matrix shape {self.q_matrix.shape} does not match "
                f"{len(self.item_ids)} items x {len(self.skill_ids)} skills"
            )
        if n and np.any(np.diff(self.learner) < 0):
            raise ValueError("rows must be grouped by learner in ascending learner order")
        counts = (
            np.bincount(self.learner, minlength=len(self.learner_ids))
            if n
            else np.zeros(len(self.learner_ids), dtype=np.int64)
        )
        offsets = np.zeros(len(self.learner_ids) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        object.__setattr__(self, "offsets", offsets)

    @property
    def n_rows(self) -> int:
        return len(self.learner)

    @property
    def n_learners(self) -> int:
        return len(self.learner_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_skills(self) -> int:
        return len(self.skill_ids)

    @property
    def lengths(self) -> np.ndarray:
        """Number of rows of each learner, shape (n_learners,)."""
        return np.diff(self.offsets)

    @property
    def primary_skill(self) -> np.ndarray:
        """First skill of each item, shape (n_items,); -1 for an item with no skill.

        Skill-level models (DKT, CAKT on the DKVMN files) read the skill of an
        item from here; for single-skill items it is the skill.
        """
        has_skill = self.q_matrix.any(axis=1)
        return np.where(has_skill, self.q_matrix.argmax(axis=1), -1).astype(np.int32)

    def rows(self, learner: int) -> slice:
        return slice(int(self.offsets[learner]), int(self.offsets[learner + 1]))

    def sequences(self) -> Iterator[tuple[int, slice]]:
        for learner in range(self.n_learners):
            yield learner, self.rows(learner)

    def subset(self, learners: Sequence[int] | np.ndarray) -> Dataset:
        """The rows of the given learners, renumbered 0..len(learners)-1 in the given order."""
        learners = np.asarray(learners, dtype=np.int64)
        if len(learners) == 0:
            index = np.zeros(0, dtype=np.int64)
        else:
            index = np.concatenate(
                [np.arange(self.offsets[learner], self.offsets[learner + 1]) for learner in learners]
            )
        new_learner = np.repeat(np.arange(len(learners), dtype=np.int32), self.lengths[learners])
        return Dataset(
            learner=new_learner,
            item=self.item[index],
            correct=self.correct[index],
            timestamp=self.timestamp[index],
            q_matrix=self.q_matrix,
            item_ids=self.item_ids,
            skill_ids=self.skill_ids,
            learner_ids=tuple(self.learner_ids[learner] for learner in learners),
            has_time=self.has_time,
        )

    def truncate(self, keep: np.ndarray) -> Dataset:
        """Keep the first ``keep[l]`` rows of each learner l (shape (n_learners,))."""
        keep = np.minimum(np.asarray(keep, dtype=np.int64), self.lengths)
        position = np.arange(self.n_rows) - self.offsets[self.learner]
        mask = position < keep[self.learner]
        return self.with_rows(mask)

    def with_rows(self, mask: np.ndarray) -> Dataset:
        """Same learners, only the rows where ``mask`` (shape (N,)) is True."""
        return Dataset(
            learner=self.learner[mask],
            item=self.item[mask],
            correct=self.correct[mask],
            timestamp=self.timestamp[mask],
            q_matrix=self.q_matrix,
            item_ids=self.item_ids,
            skill_ids=self.skill_ids,
            learner_ids=self.learner_ids,
            has_time=self.has_time,
        )

    def with_vocabulary(self, item_ids: Sequence[str], skill_ids: Sequence[str], q_matrix: np.ndarray) -> Dataset:
        """Re-express the rows against a larger item/skill vocabulary (a fitted model's)."""
        position = {item_id: index for index, item_id in enumerate(item_ids)}
        missing = [i for i in self.item_ids if i not in position]
        if missing:
            raise ValueError(f"items unknown to the vocabulary: {missing[:5]}")
        remap = np.array([position[i] for i in self.item_ids], dtype=np.int32)
        return Dataset(
            learner=self.learner,
            item=remap[self.item] if self.n_rows else self.item,
            correct=self.correct,
            timestamp=self.timestamp,
            q_matrix=np.asarray(q_matrix, dtype=bool),
            item_ids=tuple(item_ids),
            skill_ids=tuple(skill_ids),
            learner_ids=self.learner_ids,
            has_time=self.has_time,
        )


def dataset_from_records(
    records: Iterable[tuple[str, str, float, float]],
    *,
    item_skills: Mapping[str, Sequence[str]] | None = None,
    has_time: bool = True,
    skill_ids: Sequence[str] | None = None,
    item_ids: Sequence[str] | None = None,
) -> Dataset:
    """Build a Dataset from (learner, item, correct, timestamp) records in any order.

    ``item_skills`` maps an item to its skills (the Q-matrix); an item absent from
    it is its own skill, as in the DKVMN files where a skill tag stands in for
    the item. Rows of a learner are sorted by timestamp, stable on ties so the
    given order wins.
    """
    records = list(records)
    item_skills = item_skills or {}
    learner_names = sorted({r[0] for r in records})
    learner_index = {name: index for index, name in enumerate(learner_names)}
    items = list(item_ids) if item_ids is not None else sorted({r[1] for r in records} | set(item_skills))
    item_index = {name: index for index, name in enumerate(items)}
    if skill_ids is None:
        skill_set: set[str] = set()
        for item_id in items:
            skill_set.update(item_skills.get(item_id, (item_id,)))
        skill_ids = sorted(skill_set)
    skill_index = {name: index for index, name in enumerate(skill_ids)}
    q_matrix = np.zeros((len(items), len(skill_ids)), dtype=bool)
    for item_id, index in item_index.items():
        for skill in item_skills.get(item_id, (item_id,)):
            q_matrix[index, skill_index[skill]] = True

    learner = np.fromiter((learner_index[r[0]] for r in records), dtype=np.int32, count=len(records))
    item = np.fromiter((item_index[r[1]] for r in records), dtype=np.int32, count=len(records))
    correct = np.fromiter((r[2] for r in records), dtype=np.float32, count=len(records))
    timestamp = np.fromiter((r[3] for r in records), dtype=np.float64, count=len(records))
    order = np.lexsort((timestamp, learner))
    return Dataset(
        learner=learner[order],
        item=item[order],
        correct=correct[order],
        timestamp=timestamp[order],
        q_matrix=q_matrix,
        item_ids=tuple(items),
        skill_ids=tuple(skill_ids),
        learner_ids=tuple(learner_names),
        has_time=has_time,
    )


def concat(first: Dataset, second: Dataset) -> Dataset:
    """The learners of both datasets (same vocabulary), ``second``'s numbered after ``first``'s."""
    if first.item_ids != second.item_ids or first.skill_ids != second.skill_ids:
        raise ValueError("datasets must share items and skills")
    return Dataset(
        learner=np.concatenate([first.learner, second.learner + first.n_learners]).astype(np.int32),
        item=np.concatenate([first.item, second.item]),
        correct=np.concatenate([first.correct, second.correct]),
        timestamp=np.concatenate([first.timestamp, second.timestamp]),
        q_matrix=first.q_matrix,
        item_ids=first.item_ids,
        skill_ids=first.skill_ids,
        learner_ids=first.learner_ids + second.learner_ids,
        has_time=first.has_time and second.has_time,
    )
