"""PrerequisiteGraph: order, ancestry, frontier, cycles, restriction."""

from __future__ import annotations

import random

import pytest

from curriculum.graph import CycleError, Edge, GraphError, PrerequisiteGraph, find_cycle

# count -> add -> frac-equiv -> frac-add -> frac-mixed;  count -> mult -> frac-equiv
SKILLS = ["frac-mixed", "frac-add", "frac-equiv", "mult", "add", "count", "geometry"]
EDGES = [
    ("count", "add"),
    ("count", "mult"),
    ("add", "frac-equiv"),
    ("mult", "frac-equiv"),
    ("frac-equiv", "frac-add"),
    ("frac-add", "frac-mixed"),
]


@pytest.fixture
def graph() -> PrerequisiteGraph:
    return PrerequisiteGraph(SKILLS, EDGES)


def test_topological_order_puts_every_prerequisite_first(graph):
    order = graph.topological_order()
    assert sorted(order) == sorted(SKILLS)
    position = {skill: index for index, skill in enumerate(order)}
    for source, target in EDGES:
        assert position[source] < position[target]


def test_ancestors_descendants_parents(graph):
    assert set(graph.ancestors("frac-add")) == {"frac-equiv", "add", "mult", "count"}
    assert graph.ancestors("count") == []
    assert set(graph.descendants("add")) == {"frac-equiv", "frac-add", "frac-mixed"}
    assert set(graph.parents("frac-equiv")) == {"add", "mult"}
    assert set(graph.children("count")) == {"add", "mult"}
    assert graph.descendants("geometry") == [] and graph.ancestors("geometry") == []


def test_frontier_needs_every_direct_prerequisite(graph):
    assert set(graph.frontier(set())) == {"count", "geometry"}
    assert set(graph.frontier({"count"})) == {"add", "mult", "geometry"}
    # frac-equiv waits for both add and mult.
    assert set(graph.frontier({"count", "add", "geometry"})) == {"mult"}
    assert set(graph.frontier({"count", "add", "mult", "geometry"})) == {"frac-equiv"}
    assert graph.frontier(set(SKILLS)) == []
    # Only direct prerequisites gate a skill: a learner who already masters frac-equiv may go on.
    assert set(graph.frontier({"frac-equiv"})) == {"count", "geometry", "frac-add"}


def test_cycle_is_rejected_and_named():
    with pytest.raises(CycleError) as raised:
        PrerequisiteGraph(["a", "b", "c", "d"], [("d", "a"), ("a", "b"), ("b", "c"), ("c", "a")])
    assert raised.value.cycle == ["a", "b", "c", "a"]
    assert "cycle: a -> b -> c -> a" in str(raised.value)
    assert find_cycle(["a", "b"], [("a", "b")]) is None


def test_unknown_skill_and_self_loop_are_errors():
    with pytest.raises(GraphError, match="unknown skill 'z'"):
        PrerequisiteGraph(["a"], [("a", "z")])
    with pytest.raises(GraphError, match="self-loop"):
        PrerequisiteGraph(["a"], [("a", "a")])


def test_restricted_keeps_goals_and_their_ancestors(graph):
    sub = graph.restricted(["frac-equiv"])
    assert set(sub.skills) == {"frac-equiv", "add", "mult", "count"}
    assert set(sub.parents("frac-equiv")) == {"add", "mult"}
    assert "geometry" not in sub and "frac-add" not in sub


def test_acyclic_drops_the_learned_edge_that_closes_a_cycle():
    edges = [Edge("a", "b"), Edge("b", "c"), Edge("c", "a", 0.9, "learned"), Edge("a", "c", 0.6, "learned")]
    graph, dropped = PrerequisiteGraph.acyclic(["a", "b", "c"], edges)
    assert dropped == [Edge("c", "a", 0.9, "learned")]
    assert graph.edge("a", "b").origin == "authored" and graph.edge("a", "c").weight == 0.6


def test_large_random_dag_is_consistent():
    rng = random.Random(1)
    skills = [f"s{index}" for index in range(400)]
    edges = {(skills[i], skills[j]) for _ in range(1500) for i, j in [sorted(rng.sample(range(400), 2))]}
    graph = PrerequisiteGraph(list(reversed(skills)), edges)
    position = {skill: index for index, skill in enumerate(graph.topological_order())}
    assert all(position[s] < position[t] for s, t in edges)
    # Ancestors by plain search agree with the bitset closure.
    parents: dict[str, set[str]] = {}
    for source, target in edges:
        parents.setdefault(target, set()).add(source)
    for skill in rng.sample(skills, 20):
        seen, stack = set(), [skill]
        while stack:
            for parent in parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        assert set(graph.ancestors(skill)) == seen
