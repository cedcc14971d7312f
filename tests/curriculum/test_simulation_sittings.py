"""The second simulated learner: forgetting only between sittings, soft prerequisite gating, a post-test that
leaves the learner as they are."""

from __future__ import annotations

import json
from pathlib import Path

from curriculum.simulation_sittings import SittingsCourse, SittingsLearner

DEMO = Path(__file__).resolve().parents[2] / "curriculum" / "demo" / "arithmetic.json"


def test_knowledge_is_lost_only_between_sittings_and_the_post_test_changes_nothing():
    course = SittingsCourse.from_document(json.loads(DEMO.read_text()), seed=0)
    assert ((0 < course.guess) & (course.guess < 0.6)).all() and ((0 < course.slip) & (course.slip <= 0.3)).all()
    lost_within = lost_between = 0
    for seed in range(20):
        learner = SittingsLearner(course, seed=seed, forget_median=0.5)
        for step in range(120):
            before = learner.known.copy()
            sitting = learner._sitting_of(learner.answers)
            learner._advance_to(learner.answers)  # a sitting that ended is over, tested or not
            lost_between += int((before & ~learner.known).sum())
            before = learner.known.copy()
            test_before = (learner.known.copy(), learner.rng.bit_generator.state)
            learner.post_test(range(course.n_skills))
            assert (learner.known == test_before[0]).all() and learner.rng.bit_generator.state == test_before[1]
            learner.answer(step % len(course.item_ids))
            lost_within += int((before & ~learner.known).sum())  # within one sitting: nothing forgotten
            assert learner._sitting_of(learner.answers - 1) == sitting
    assert lost_within == 0 and lost_between > 0


def test_a_skill_is_learned_far_more_often_once_its_prerequisites_are_known():
    course = SittingsCourse.from_document(json.loads(DEMO.read_text()), seed=0)
    graph = course.graph
    skill = next(index for index, parents in enumerate(course.parents) if parents)
    item = course.skill_items()[skill][0]
    learned = {}
    for gated in (True, False):
        count = 0
        for seed in range(300):
            learner = SittingsLearner(course, seed=seed)
            learner.known[:] = False
            if not gated:
                learner.known[list(course.parents[skill])] = True
            learner.answer(item)
            count += bool(learner.known[skill])
        learned[gated] = count
    assert 0 < learned[True] < learned[False] / 3, learned
    assert graph.skills[skill]
