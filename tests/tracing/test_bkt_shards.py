"""BKT's EM spread over shards of skills: the merged parts are the one-worker fit, to the bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracing.data import Dataset
from tracing.estimators.bkt import BKT

FITTED = ("prior", "learns", "forget_rates", "guesses", "slips", "answers")


def course(seed: int = 3) -> Dataset:
    """Seven skills (the last never practised), multi-skill items, an item without a skill, one never answered."""
    rng = np.random.default_rng(seed)
    n_items, n_skills, n_learners, steps = 30, 7, 120, 30
    q_matrix = np.zeros((n_items, n_skills), dtype=bool)
    q_matrix[np.arange(n_items), rng.integers(0, n_skills - 1, n_items)] = True
    q_matrix[[2, 9, 17], [0, 3, 4]] = True
    q_matrix[5] = False
    item = rng.integers(0, n_items - 1, n_learners * steps).astype(np.int32)
    return Dataset(
        learner=np.repeat(np.arange(n_learners), steps).astype(np.int32),
        item=item,
        correct=(rng.random(len(item)) < 0.3 + 0.02 * item).astype(np.float32),
        timestamp=np.tile(np.arange(steps, dtype=np.float64), n_learners),
        q_matrix=q_matrix,
        item_ids=tuple(f"i{i}" for i in range(n_items)),
        skill_ids=tuple(f"s{k}" for k in range(n_skills)),
        learner_ids=tuple(f"l{learner}" for learner in range(n_learners)),
    )


def rows_of_skills(data: Dataset, skills: list[int]) -> Dataset:
    """Only the rows of items linked to ``skills``; every learner kept (some with no row), as a shard loads them."""
    linked = np.asarray(data.q_matrix[:, skills].any(axis=1), dtype=bool)
    keep = linked[data.item]
    return Dataset(
        learner=data.learner[keep],
        item=data.item[keep],
        correct=data.correct[keep],
        timestamp=data.timestamp[keep],
        q_matrix=data.q_matrix,
        item_ids=data.item_ids,
        skill_ids=data.skill_ids,
        learner_ids=data.learner_ids,
    )


def assert_same(one: BKT, other: BKT) -> None:
    for name in FITTED:
        np.testing.assert_array_equal(getattr(one, name), getattr(other, name), err_msg=name)
    assert one.fit_info == other.fit_info
    assert one.base_rate == other.base_rate


VARIANTS = [
    {"restarts": 3},
    {"restarts": 3, "multigs": True},
    {"restarts": 2, "forgets": True, "multigs": True},
    {"restarts": 2, "multiprior": True},
]


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: ",".join(p))
@pytest.mark.parametrize("shards", [1, 2, 3, 7, 9])
def test_shards_merge_to_the_one_worker_fit(params: dict, shards: int) -> None:
    data = course()
    whole = BKT(**params).fit(data, seed=5)
    groups = [list(range(data.n_skills))[start::shards] for start in range(shards)]  # 9 shards: two are empty
    # Each part goes through JSON, as through Celery's result backend, and the parts arrive in any order.
    parts = [json.loads(json.dumps(BKT(**params).fit_skills(data, group, seed=5))) for group in groups]
    merged = BKT(**params).from_parts(data, parts[::-1])
    assert_same(whole, merged)
    np.testing.assert_array_equal(whole.predict_proba(data), merged.predict_proba(data))
    assert merged.params()["skills"] == whole.params()["skills"]


@pytest.mark.parametrize("params", VARIANTS[:3], ids=lambda p: ",".join(p))
def test_a_shard_needs_only_its_skills_rows(params: dict) -> None:
    """Without multiprior, a shard may load only the answers on its skills' items."""
    data = course(seed=8)
    whole = BKT(**params).fit(data, seed=1)
    groups = [[0, 1], [2, 3, 4], [5, 6]]
    parts = [BKT(**params).fit_skills(rows_of_skills(data, group), group, seed=1) for group in groups]
    merged = BKT(**params).from_parts(data, parts)
    assert_same(whole, merged)


def test_parts_must_cover_every_skill_once() -> None:
    data = course()
    model = BKT(restarts=1, max_iter=5)
    parts = [model.fit_skills(data, [0, 1, 2], seed=0), model.fit_skills(data, [2, 3, 4, 5], seed=0)]
    with pytest.raises(ValueError, match=r"missing \[6\], twice \[2\]"):
        BKT(restarts=1, max_iter=5).from_parts(data, parts)
