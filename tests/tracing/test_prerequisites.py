"""The prerequisite miners and the graph scores the graph bench judges psikt by."""

from __future__ import annotations

import numpy as np
import pytest

from tracing.data import dataset_from_records
from tracing.prerequisites import (
    average_precision,
    bootstrap_ap_difference,
    candidate_pairs,
    conditional_correctness,
    first_met,
    learner_correlation,
    orientation_agreement,
    shared_items,
    top_k,
    transition_lift,
    undirected,
)


def _course(sequences: dict[str, list[tuple[str, float]]], item_skills: dict[str, list[str]] | None = None):
    records = [
        (learner, item, correct, float(step))
        for learner, answers in sequences.items()
        for step, (item, correct) in enumerate(answers)
    ]
    return dataset_from_records(records, item_skills=item_skills)


def test_transition_lift_sees_the_order_learners_move_in() -> None:
    data = _course({f"l{n}": [("a", 1.0), ("b", 1.0), ("c", 0.0)] for n in range(4)})
    lift = transition_lift(data)
    a, b, c = (data.skill_ids.index(name) for name in "abc")
    assert lift[a, b] > 1.0 and lift[b, c] > 1.0
    assert lift[b, a] == 0.0 and lift[a, c] == 0.0
    assert np.all(np.diag(lift) == 0.0)


def test_conditional_correctness_separates_learners_who_did_well_first() -> None:
    good = {f"g{n}": [("a", 1.0), ("a", 1.0), ("b", 1.0)] for n in range(5)}
    bad = {f"w{n}": [("a", 0.0), ("a", 0.0), ("b", 0.0)] for n in range(5)}
    data = _course(good | bad)
    score = conditional_correctness(data, min_learners=5)
    a, b = data.skill_ids.index("a"), data.skill_ids.index("b")
    assert score[a, b] == pytest.approx(1.0)
    assert score[b, a] == 0.0  # nobody met a after b
    assert conditional_correctness(data, min_learners=6)[a, b] == 0.0  # too few learners in a group


def test_learner_correlation_links_skills_the_same_learners_are_good_at() -> None:
    rng = np.random.default_rng(0)
    alone = [f"s{k}" for k in range(10)]  # independent skills (enough that removing ability does not anticorrelate)
    sequences = {}
    for n in range(80):
        strong_xy = rng.random() < 0.5  # x and y go together
        strengths = [("x", strong_xy), ("y", strong_xy)] + [(skill, rng.random() < 0.5) for skill in alone]
        answers = []
        for skill, strong in strengths:
            answers += [(f"{skill}-{j}", float(rng.random() < (0.9 if strong else 0.2))) for j in range(4)]
        answers.append(("xy", 1.0))  # a question of two skills is left out
        sequences[f"l{n}"] = answers
    items = {f"{skill}-{j}": [skill] for skill in ["x", "y", *alone] for j in range(4)} | {"xy": ["x", "y"]}
    data = _course(sequences, item_skills=items)
    score = learner_correlation(data)
    x, y = data.skill_ids.index("x"), data.skill_ids.index("y")
    others = [data.skill_ids.index(skill) for skill in alone]
    assert score[x, y] == score[y, x] and score[x, y] > 0.5
    assert np.abs(score[np.ix_([x, y], others)]).max() < score[x, y] / 2
    assert np.all(np.diag(score) == 0.0)
    assert np.all(learner_correlation(data, min_learners=81) == 0.0)  # too few learners answered both


def test_shared_items_and_first_met() -> None:
    data = _course(
        {"l1": [("q1", 1.0), ("q2", 1.0)], "l2": [("q1", 0.0), ("q2", 1.0)]},
        item_skills={"q1": ["x", "y"], "q2": ["z"]},
    )
    x, y, z = (data.skill_ids.index(name) for name in "xyz")
    shared = shared_items(data)
    assert shared[x, y] == shared[y, x] == 1.0 and shared[x, z] == 0.0
    order = first_met(data)
    assert order[x] == order[y] == 0.0 and order[z] == 1.0


def test_ranking_scores() -> None:
    labels = np.array([True, False, True, False])
    assert average_precision(labels, np.array([4.0, 1.0, 3.0, 2.0])) == 1.0
    assert average_precision(labels, np.array([1.0, 4.0, 2.0, 3.0])) == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert top_k(labels, np.array([4.0, 3.0, 2.0, 1.0]), 2) == {"k": 2, "hits": 1, "precision": 0.5, "recall": 0.5}
    first, second = candidate_pairs(np.array([True, False, True, True]))
    assert list(zip(first, second)) == [(0, 2), (0, 3), (2, 3)]
    score = np.zeros((4, 4))
    score[3, 0] = 0.9
    assert list(undirected(score, first, second)) == [0.0, 0.9, 0.0]


def test_orientation_agreement_follows_the_order_skills_are_met() -> None:
    score = np.array([[0.0, 0.8], [0.1, 0.0]])  # 0 -> 1 preferred
    assert orientation_agreement(score, np.array([0]), np.array([1]), np.array([0.1, 0.5]))["agree"] == 1.0
    assert orientation_agreement(score, np.array([0]), np.array([1]), np.array([0.9, 0.5]))["agree"] == 0.0


def test_bootstrap_ap_difference_is_paired_and_signed() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.2
    perfect = labels + rng.random(300) * 0.1
    shuffled = rng.random(300)
    result = bootstrap_ap_difference(labels, perfect, shuffled, draws=200)
    assert result["difference"] > 0.5 and result["excludes_zero"]
    same = bootstrap_ap_difference(labels, shuffled, shuffled, draws=50)
    assert same["difference"] == 0.0 and same["interval"] == [0.0, 0.0]
