"""The next-item policy (pure: no Django).

Given what a knowledge-tracing model says of one learner, pick the item that
should come next and say why. The policy works on the prerequisite graph
restricted to the goal skills and their ancestors:

- a skill counts as *mastered* when P(known) >= ``threshold``;
- the *frontier* is the unmastered skills whose prerequisites are all mastered:
  the only skills the learner is ready to learn;
- a frontier skill that was mastered at its last practice and has since
  decayed below the threshold (models with forgetting) is a *review*;
- a skill the learner keeps failing although its prerequisites look mastered
  points at a prerequisite the model over-estimates, so its weakest
  prerequisite not checked lately is a *remediation*;
- before the goals are declared done, a skill not practised for
  ``review_after_days`` is checked once more (also a *review*): a model
  without forgetting cannot see that the learner may have forgotten it;
- among the candidates the policy takes the skill whose best item promises the
  largest expected gain in mastery (the model's one-step look-ahead), so
  practice goes where it moves knowledge most and stops once a skill is
  mastered; within a skill it prefers items whose P(correct) lies in the
  target band (hard enough to teach, easy enough not to discourage), never
  the item just answered and, where it can, none of the last few.

When every goal skill is mastered it returns a Choice with ``done=True``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from curriculum.graph import PrerequisiteGraph

FRONTIER, REVIEW, REMEDIATION, DONE = "frontier", "review", "remediation", "done"


@dataclass(frozen=True)
class ItemSpec:
    """An item as the policy sees it: its id and the skills it tests."""

    id: str
    skills: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """One earlier answer of the learner; ``correct`` in [0, 1], ``at`` in seconds (optional)."""

    item: str
    correct: float
    at: float | None = None


POLICY_LIMITS: dict[str, tuple[float, float]] = {
    "threshold": (0.0, 1.0), "band": (0.0, 1.0), "review_after_days": (0.0, 3650.0),
    "struggle_window": (1, 1000), "struggle_errors": (1, 1000), "avoid_recent": (1, 1000),
}
"""Outer bounds of the numeric policy settings (``PolicyConfig`` checks how they relate)."""


def _policy_number(key: str, value: Any) -> float:
    low, high = POLICY_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"bad policy settings: {key} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"bad policy settings: {key} must be a number in [{low:g}, {high:g}]")
    return number


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of the policy; a course stores them as JSON (``Course.policy``).

    ``threshold``: P(known) at which a skill counts as mastered.
    ``band``: the P(correct) range preferred for the next item.
    ``goals``: the skills to master (empty: every skill of the course).
    ``review``: whether decayed skills are practised again; when off, a skill
    mastered at its last practice stays mastered.
    ``remediation``: whether struggling sends the learner back to a prerequisite.
    ``struggle_window``/``struggle_errors``: a skill is struggled with when at
    least ``struggle_errors`` of the learner's last ``struggle_window`` answers
    on it, given since the learner last answered any of its prerequisites,
    were wrong (so one remediation item is followed by a fresh try).
    ``review_after_days``: before declaring the goals done, a goal-relevant
    skill last practised longer ago than this is checked once more (a review):
    a model without forgetting cannot see decay, the learner may have. None
    turns the check off; models with forgetting mostly make it moot.
    ``avoid_recent``: items among the last this many answers are avoided when
    another item of the skill exists (the last one always is).
    """

    threshold: float = 0.95
    band: tuple[float, float] = (0.6, 0.85)
    goals: tuple[str, ...] = ()
    review: bool = True
    remediation: bool = True
    struggle_window: int = 5
    struggle_errors: int = 4
    avoid_recent: int = 3
    review_after_days: float | None = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be in (0, 1)")
        low, high = self.band
        if not 0 <= low <= high <= 1:
            raise ValueError("band must be [low, high] with 0 <= low <= high <= 1")
        if self.struggle_window < 1 or not 1 <= self.struggle_errors <= self.struggle_window:
            raise ValueError("need struggle_window >= 1 and 1 <= struggle_errors <= struggle_window")
        if self.avoid_recent < 1:
            raise ValueError("avoid_recent must be >= 1")
        if self.review_after_days is not None and not self.review_after_days >= 0:
            raise ValueError("review_after_days must be >= 0 or null")

    @classmethod
    def from_json(cls, payload: Mapping[str, Any] | None) -> PolicyConfig:
        """Read a course's ``policy`` JSON; a non-object, unknown keys or bad values raise ValueError.

        Numbers must be JSON numbers (not strings or booleans), finite, and within the bounds in
        ``POLICY_LIMITS``: a window of a billion answers is a typo, not a setting.
        """
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise ValueError(f"the policy must be an object, got {type(payload).__name__}")
        payload = dict(payload)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(key)[:64] for key in set(payload) - known)
        if unknown:
            raise ValueError(f"unknown policy settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "threshold" in payload:
            payload["threshold"] = _policy_number("threshold", payload["threshold"])
        if "band" in payload:
            band = payload["band"]
            if not isinstance(band, (list, tuple)) or len(band) != 2:
                raise ValueError("bad policy settings: band must be [low, high]")
            payload["band"] = (_policy_number("band", band[0]), _policy_number("band", band[1]))
        if "goals" in payload:
            goals = payload["goals"] or ()
            if not isinstance(goals, (list, tuple)) or not all(isinstance(goal, str) for goal in goals):
                raise ValueError("bad policy settings: goals must be a list of skill ids")
            payload["goals"] = tuple(goals)
        if payload.get("review_after_days") is not None:
            payload["review_after_days"] = _policy_number("review_after_days", payload["review_after_days"])
        for key in ("review", "remediation"):
            if key in payload and not isinstance(payload[key], bool):
                raise ValueError(f"bad policy settings: {key} must be true or false")
        for key in ("struggle_window", "struggle_errors", "avoid_recent"):
            if key in payload:
                number = _policy_number(key, payload[key])
                if number != int(number):
                    raise ValueError(f"bad policy settings: {key} must be an integer")
                payload[key] = int(number)
        return cls(**payload)

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["band"] = list(self.band)
        payload["goals"] = list(self.goals)
        return payload


@dataclass(frozen=True)
class Choice:
    """The next item and why.

    ``skill`` is the skill the item was chosen for, ``why`` one of frontier,
    review, remediation (or done), ``p_correct`` the model's P(the learner
    answers the item correctly), ``expected_gain`` the expected increase of the
    learner's mastery from answering it, ``mastery`` P(known) of ``skill`` now.
    ``struggling`` names the skill that prompted a remediation.
    """

    item: str | None
    skill: str | None
    why: str
    p_correct: float | None = None
    expected_gain: float | None = None
    mastery: float | None = None
    struggling: str | None = None
    done: bool = False
    goals_mastered: int = 0
    goals_total: int = 0

    def reason(self) -> dict[str, Any]:
        reason = {"skill": self.skill, "why": self.why, "p_correct": self.p_correct,
                  "expected_gain": self.expected_gain, "mastery": self.mastery}
        if self.struggling is not None:
            reason["struggling"] = self.struggling
        return reason

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "done": self.done, "reason": self.reason(),
                "goals_mastered": self.goals_mastered, "goals_total": self.goals_total}


@dataclass
class _State:
    """Derived views of the inputs shared by candidate selection and item choice."""

    graph: PrerequisiteGraph
    mastery: dict[str, float]
    mastered: set[str]
    goals: tuple[str, ...]
    items_by_skill: dict[str, list[ItemSpec]] = field(default_factory=dict)


_catalogs: OrderedDict[tuple[int, int, tuple[str, ...]], tuple[Any, Any, PrerequisiteGraph, dict]] = OrderedDict()
_CATALOGS = 32


def catalog(graph: PrerequisiteGraph, items: Sequence[ItemSpec],
            goals: tuple[str, ...]) -> tuple[PrerequisiteGraph, dict[str, list[ItemSpec]]]:
    """The graph restricted to the goals (all of it for no goals), and the items of each of its skills.

    They depend on the course, not the learner: a caller that passes the same graph and item
    objects again (the server keeps them per course model) gets them from a small cache keyed
    by identity; the entry holds its keys, so an id is never reused while it is cached.
    """
    key = (id(graph), id(items), goals)
    cached = _catalogs.get(key)
    if cached is not None and cached[0] is graph and cached[1] is items:
        return cached[2], cached[3]
    relevant = graph.restricted(goals) if goals else graph
    items_by_skill: dict[str, list[ItemSpec]] = {}
    for item in items:
        for skill in item.skills:
            if skill in relevant:
                items_by_skill.setdefault(skill, []).append(item)
    _catalogs[key] = (graph, items, relevant, items_by_skill)
    while len(_catalogs) > _CATALOGS:
        _catalogs.popitem(last=False)
    return relevant, items_by_skill


def _prepare(*, mastery: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
             config: PolicyConfig, mastery_before: Mapping[str, float] | None) -> _State:
    goals = tuple(config.goals) or graph.skills
    relevant, items_by_skill = catalog(graph, items, tuple(config.goals))
    now = {skill: float(mastery.get(skill, 0.0)) for skill in relevant.skills}
    level = dict(now)
    if not config.review and mastery_before is not None:
        # Without review a skill keeps the mastery it reached at its last practice.
        level = {skill: max(value, float(mastery_before.get(skill, 0.0))) for skill, value in now.items()}
    mastered = {skill for skill, value in level.items() if value >= config.threshold}
    # A skill no item tests can never be practised; let it not block what depends on it.
    mastered |= {skill for skill in relevant.skills if skill not in items_by_skill}
    return _State(graph=relevant, mastery=level, mastered=mastered, goals=goals, items_by_skill=items_by_skill)


def candidate_skills(*, mastery: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
                     config: PolicyConfig, mastery_before: Mapping[str, float] | None = None,
                     history: Sequence[Answer] = ()) -> dict[str, str]:
    """The skills the policy may pick next, each with its reason (frontier, review, remediation).

    Callers use it to limit costly look-ahead (expected gain) to the items of
    these skills. ``mastery`` is P(known) per skill id now, ``mastery_before``
    P(known) at each skill's last practice (models with forgetting),
    ``history`` the learner's answers, oldest first.
    """
    state = _prepare(mastery=mastery, graph=graph, items=items, config=config, mastery_before=mastery_before)
    return _candidates(state, config=config, mastery_before=mastery_before, history=history)[0]


def _candidates(state: _State, *, config: PolicyConfig, mastery_before: Mapping[str, float] | None,
                history: Sequence[Answer]) -> tuple[dict[str, str], dict[str, str]]:
    """(skill -> why, remediation skill -> the struggling skill that prompted it)."""
    candidates: dict[str, str] = {}
    for skill in state.graph.frontier(state.mastered):
        decayed = (config.review and mastery_before is not None
                   and float(mastery_before.get(skill, 0.0)) >= config.threshold)
        candidates[skill] = REVIEW if decayed else FRONTIER
    prompted: dict[str, str] = {}
    if config.remediation and history:
        item_skills = {item.id: item.skills for items in state.items_by_skill.values() for item in items}
        recent_skills = {skill for answer in history[-config.struggle_window:]
                         for skill in item_skills.get(answer.item, ())}
        for skill in [skill for skill, why in candidates.items() if why == FRONTIER]:
            ancestors = set(state.graph.ancestors(skill))
            errors = answered = 0
            for answer in reversed(history):
                answer_skills = item_skills.get(answer.item, ())
                if ancestors.intersection(answer_skills) or answered == config.struggle_window:
                    break  # a prerequisite was checked since: the struggle starts afresh
                if skill in answer_skills:
                    answered += 1
                    errors += answer.correct < 0.5
            if errors < config.struggle_errors:
                continue
            weak = [ancestor for ancestor in ancestors
                    if ancestor not in recent_skills and ancestor in state.items_by_skill]
            if weak:
                # The least-known prerequisite, nearest to the struggling skill on ties.
                target = min(weak, key=lambda a: (state.mastery[a], -state.graph.rank(a)))
                if candidates.get(target) != REVIEW:
                    candidates[target] = REMEDIATION
                    prompted[target] = skill
    return candidates, prompted


def _stale(state: _State, *, config: PolicyConfig, last_practice: Mapping[str, float] | None,
           now: float | None) -> str | None:
    """The practised skill longest unpractised beyond ``review_after_days``, or None."""
    if config.review_after_days is None or not last_practice or now is None:
        return None
    limit = now - config.review_after_days * 86_400.0
    stale = [(last_practice[skill], state.graph.rank(skill), skill) for skill in state.graph.skills
             if skill in state.items_by_skill and last_practice.get(skill) is not None
             and last_practice[skill] < limit]
    return min(stale)[2] if stale else None


def _fallback_p(item: ItemSpec, mastery: Mapping[str, float]) -> float:
    # A guess of 0.2 and a slip of 0.1 over the mean mastery of the item's skills.
    known = [mastery.get(skill, 0.0) for skill in item.skills] or [0.0]
    return 0.2 + 0.7 * sum(known) / len(known)


def next_item(*, mastery: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
              config: PolicyConfig, p_correct: Mapping[str, float] | None = None,
              gain: Mapping[str, float] | None = None, mastery_before: Mapping[str, float] | None = None,
              history: Sequence[Answer] = (), last_practice: Mapping[str, float] | None = None,
              now: float | None = None) -> Choice:
    """Choose the next item for one learner.

    ``mastery``: P(known) per skill id now (after forgetting, where the model has it).
    ``mastery_before``: P(known) per skill id at its last practice; a skill that
    was mastered then and is not now is a review.
    ``p_correct``: per item id, the model's P(correct) if answered next.
    ``gain``: per item id, the expected increase of mastery (summed over the
    item's skills) from answering it, from the model's look-ahead; where
    missing, ``1 - mastery`` of the skill stands in (least-known first).
    ``history``: the learner's answers, oldest first.
    ``last_practice``: per skill id, when (seconds) the learner last answered
    an item of it; with ``now`` (seconds) it lets the goals be checked once
    more before they are declared done (``config.review_after_days``).
    Skills absent from ``mastery`` count as unknown (0); items absent from
    ``p_correct`` get P(correct) = 0.2 + 0.7 * mean mastery of their skills.
    """
    state = _prepare(mastery=mastery, graph=graph, items=items, config=config, mastery_before=mastery_before)
    goals_mastered = sum(state.mastery.get(goal, 0.0) >= config.threshold for goal in state.goals)
    if all(goal in state.mastered for goal in state.goals):
        stale = _stale(state, config=config, last_practice=last_practice, now=now)
        if not stale:
            return Choice(item=None, skill=None, why=DONE, done=True, goals_mastered=goals_mastered,
                          goals_total=len(state.goals))
        candidates, prompted = {stale: REVIEW}, {}
    else:
        candidates, prompted = _candidates(state, config=config, mastery_before=mastery_before, history=history)
    last = history[-1].item if history else None
    recent = {answer.item for answer in history[-config.avoid_recent:]}
    low, high = config.band
    best: tuple | None = None
    for skill, why in candidates.items():
        chosen: tuple | None = None
        for item in state.items_by_skill.get(skill, ()):
            if item.id == last:
                continue
            # Skip items that also test a skill the learner is not ready for.
            if any(other != skill and other in state.graph and other not in state.mastered
                   and other not in candidates for other in item.skills):
                continue
            if p_correct is not None and item.id in p_correct:
                probability = float(p_correct[item.id])
            else:
                probability = _fallback_p(item, state.mastery)
            expected = float(gain[item.id]) if gain is not None and item.id in gain else 1.0 - state.mastery[skill]
            if not math.isfinite(expected):
                expected = 0.0
            distance = max(low - probability, probability - high, 0.0)
            # Within a skill: unseen lately, then in (or nearest) the band, then the larger gain;
            # the earliest listed item wins full ties, so choices are reproducible.
            key = (item.id not in recent, -distance, round(expected, 12))
            if chosen is None or key > chosen[0]:
                chosen = (key, item, probability, expected)
        if chosen is None:
            continue
        _, item, probability, expected = chosen
        # Across skills: remediation first, then the largest expected gain, then the earliest in the graph.
        skill_key = (why == REMEDIATION, round(expected, 12), -state.graph.rank(skill))
        if best is None or skill_key > best[0]:
            best = (skill_key, item, skill, why, probability, expected)
    if best is None:
        # No item fits but the one just answered; an item twice in a row teaches nothing new.
        return Choice(item=None, skill=None, why=FRONTIER, goals_mastered=goals_mastered,
                      goals_total=len(state.goals))
    _, item, skill, why, probability, expected = best
    return Choice(item=item.id, skill=skill, why=why, p_correct=probability, expected_gain=expected,
                  mastery=state.mastery[skill], struggling=prompted.get(skill), goals_mastered=goals_mastered,
                  goals_total=len(state.goals))
