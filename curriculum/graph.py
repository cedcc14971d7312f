"""The prerequisite graph of a course (pure: no Django).

Skills are nodes; an edge ``source -> target`` says ``source`` is a
prerequisite of ``target``. Ancestor and descendant sets are precomputed once
as integer bitsets (bit ``i`` = the skill at index ``i`` of ``skills``), so the
queries the next-item policy makes on every request (frontier, ancestors) cost
a few integer operations per skill even for hundreds of skills.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

AUTHORED = "authored"
LEARNED = "learned"


@dataclass(frozen=True)
class Edge:
    """``source`` is a prerequisite of ``target``; ``weight`` in (0, 1] (1 for authored edges)."""

    source: str
    target: str
    weight: float = 1.0
    origin: str = AUTHORED


EdgeTuple = tuple[str, str] | tuple[str, str, float] | tuple[str, str, float, str]
"""An edge written as a tuple: ``(source, target[, weight[, origin]])``."""


class GraphError(ValueError):
    """A graph that cannot be built (unknown skill, self-loop)."""


class CycleError(GraphError):
    """The edges contain a cycle; ``cycle`` lists it with the first skill repeated at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("cycle: " + " -> ".join(self.cycle))


def _as_edge(edge: Edge | EdgeTuple) -> Edge:
    if isinstance(edge, Edge):
        return edge
    return Edge(*edge)


def find_cycle(skills: Sequence[str], edges: Iterable[Edge | EdgeTuple]) -> list[str] | None:
    """A cycle among ``edges`` as ``[a, b, ..., a]``, or None when the graph is acyclic.

    Iterative depth-first search (no recursion limit on long chains); the cycle
    returned is the first one met visiting skills in the given order.
    """
    children: dict[str, list[str]] = {skill: [] for skill in skills}
    for edge in map(_as_edge, edges):
        children.setdefault(edge.source, []).append(edge.target)
        children.setdefault(edge.target, [])
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(children, white)
    for root in children:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        iterators = [iter(children[root])]
        colour[root] = grey
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                colour[path.pop()] = black
                iterators.pop()
            elif colour[child] == grey:
                return path[path.index(child) :] + [child]
            elif colour[child] == white:
                colour[child] = grey
                path.append(child)
                iterators.append(iter(children[child]))
    return None


class PrerequisiteGraph:
    """An acyclic prerequisite graph over a fixed list of skills.

    Built from skill ids and edges; raises CycleError (naming the cycle) or
    GraphError (an edge naming an unknown skill, a self-loop). Parallel edges
    between the same pair keep the highest weight, authored winning ties.
    """

    def __init__(self, skills: Sequence[str], edges: Iterable[Edge | EdgeTuple] = ()) -> None:
        self.skills: tuple[str, ...] = tuple(skills)
        if len(set(self.skills)) != len(self.skills):
            duplicates = sorted(skill for skill, count in Counter(self.skills).items() if count > 1)
            raise GraphError(f"duplicate skills: {', '.join(duplicates)}")
        self.index: dict[str, int] = {skill: position for position, skill in enumerate(self.skills)}
        self.edges: dict[tuple[str, str], Edge] = {}
        for edge in map(_as_edge, edges):
            for end in (edge.source, edge.target):
                if end not in self.index:
                    raise GraphError(f"edge {edge.source} -> {edge.target} names unknown skill {end!r}")
            if edge.source == edge.target:
                raise GraphError(f"self-loop on {edge.source!r}")
            key = (edge.source, edge.target)
            kept = self.edges.get(key)
            if kept is None or (edge.weight, edge.origin == AUTHORED) > (kept.weight, kept.origin == AUTHORED):
                self.edges[key] = edge
        cycle = find_cycle(self.skills, self.edges.values())
        if cycle is not None:
            raise CycleError(cycle)

        size = len(self.skills)
        self._parents = [0] * size
        self._children = [0] * size
        for source, target in self.edges:
            self._parents[self.index[target]] |= 1 << self.index[source]
            self._children[self.index[source]] |= 1 << self.index[target]
        self._order = self._topological_indices()
        self._ancestors = [0] * size
        for position in self._order:
            mask = self._parents[position]
            total = mask
            for parent in _bits(mask):
                total |= self._ancestors[parent]
            self._ancestors[position] = total
        self._descendants = [0] * size
        for position in reversed(self._order):
            mask = self._children[position]
            total = mask
            for child in _bits(mask):
                total |= self._descendants[child]
            self._descendants[position] = total
        self._rank = {self.skills[position]: rank for rank, position in enumerate(self._order)}

    def _topological_indices(self) -> list[int]:
        # Kahn's algorithm, always releasing the lowest-index ready skill, so the
        # order is deterministic and follows the authored skill order where the
        # edges leave it free.
        import heapq

        pending = [bin(mask).count("1") for mask in self._parents]
        ready = [position for position, count in enumerate(pending) if count == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            position = heapq.heappop(ready)
            order.append(position)
            for child in _bits(self._children[position]):
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, child)
        return order

    def __len__(self) -> int:
        return len(self.skills)

    def __contains__(self, skill: object) -> bool:
        return skill in self.index

    def _names(self, mask: int) -> list[str]:
        """Skill ids of the set bits of ``mask``, in topological order."""
        return sorted((self.skills[position] for position in _bits(mask)), key=self._rank.__getitem__)

    def mask(self, skills: Iterable[str]) -> int:
        """The bitset of ``skills`` (ids not in the graph are ignored)."""
        total = 0
        for skill in skills:
            position = self.index.get(skill)
            if position is not None:
                total |= 1 << position
        return total

    def parents(self, skill: str) -> list[str]:
        """Direct prerequisites of ``skill``, in topological order."""
        return self._names(self._parents[self.index[skill]])

    def children(self, skill: str) -> list[str]:
        """Skills that list ``skill`` as a direct prerequisite."""
        return self._names(self._children[self.index[skill]])

    def ancestors(self, skill: str) -> list[str]:
        """Every skill ``skill`` transitively depends on, in topological order."""
        return self._names(self._ancestors[self.index[skill]])

    def descendants(self, skill: str) -> list[str]:
        """Every skill that transitively depends on ``skill``, in topological order."""
        return self._names(self._descendants[self.index[skill]])

    def topological_order(self) -> list[str]:
        """All skills, each after all its prerequisites (ties broken by the given skill order)."""
        return [self.skills[position] for position in self._order]

    def rank(self, skill: str) -> int:
        """Position of ``skill`` in ``topological_order()``."""
        return self._rank[skill]

    def frontier(self, mastered: Collection[str]) -> list[str]:
        """Skills not in ``mastered`` whose direct prerequisites all are, in topological order."""
        done = self.mask(mastered)
        return [
            self.skills[position]
            for position in self._order
            if not done >> position & 1 and self._parents[position] & ~done == 0
        ]

    def edge(self, source: str, target: str) -> Edge | None:
        return self.edges.get((source, target))

    def restricted(self, goals: Iterable[str]) -> PrerequisiteGraph:
        """The subgraph of ``goals`` and all their ancestors (skill order kept)."""
        keep = 0
        for goal in goals:
            if goal not in self.index:
                raise GraphError(f"unknown goal skill {goal!r}")
            position = self.index[goal]
            keep |= (1 << position) | self._ancestors[position]
        skills = [skill for position, skill in enumerate(self.skills) if keep >> position & 1]
        kept = set(skills)
        return PrerequisiteGraph(
            skills, [edge for (source, target), edge in self.edges.items() if source in kept and target in kept]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "skills": list(self.skills),
            "edges": [
                {"from": e.source, "to": e.target, "weight": e.weight, "origin": e.origin} for e in self.edges.values()
            ],
        }

    @classmethod
    def acyclic(cls, skills: Sequence[str], edges: Iterable[Edge | EdgeTuple]) -> tuple[PrerequisiteGraph, list[Edge]]:
        """Build a graph keeping as many edges as possible: the graph and the edges left out.

        Edges are taken strongest first (authored before learned, then by weight),
        and one that would close a cycle with those already kept is left out, so
        a learned edge can never break an authored chain.
        """
        index = {skill: position for position, skill in enumerate(skills)}
        ordered = sorted(map(_as_edge, edges), key=lambda e: (e.origin != AUTHORED, -e.weight, e.source, e.target))
        descendants = [0] * len(index)  # reflexive-transitive closure minus self, kept up to date
        kept: list[Edge] = []
        dropped: list[Edge] = []
        for edge in ordered:
            if edge.source not in index or edge.target not in index or edge.source == edge.target:
                dropped.append(edge)
                continue
            source, target = index[edge.source], index[edge.target]
            if descendants[target] >> source & 1:
                dropped.append(edge)
                continue
            kept.append(edge)
            reach = descendants[target] | 1 << target
            # Every skill that reaches ``source`` (and source itself) now reaches target's closure.
            for position in range(len(descendants)):
                if position == source or descendants[position] >> source & 1:
                    descendants[position] |= reach
        return cls(skills, kept), dropped


def _bits(mask: int) -> Iterable[int]:
    """Positions of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
