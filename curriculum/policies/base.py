"""What every next-item policy shares (pure: no Django): the item, answer and record types, the
settings, the choice, the one mastery rule, and the interface a policy implements."""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from curriculum.graph import PrerequisiteGraph
from curriculum.policies import POLICIES

FRONTIER, REVIEW, REMEDIATION, CONFIRM, DONE = "frontier", "review", "remediation", "confirm", "done"


@dataclass(frozen=True)
class ItemSpec:
    """An item as the policy sees it: its id, the skills it tests and its authored difficulty level
    (None: not given; larger is harder)."""

    id: str
    skills: tuple[str, ...]
    difficulty: int | None = None


@dataclass(frozen=True)
class Seen:
    """The learner's record on one item: how often answered, when last (seconds), when last wrongly
    (seconds, None if never). Times may be any increasing clock; ``retry_gap_minutes`` needs seconds."""

    answers: int
    last_at: float
    last_wrong_at: float | None = None


@dataclass(frozen=True)
class Evidence:
    """What the learner has shown on one skill: answers on its items, and whether one of them was
    above the skill's easiest difficulty level (True where its items do not differ in difficulty)."""

    answers: int = 0
    harder: bool = False


@dataclass(frozen=True)
class Answer:
    """One earlier answer of the learner; ``correct`` in [0, 1], ``at`` in seconds (optional)."""

    item: str
    correct: float
    at: float | None = None


POLICY_LIMITS: dict[str, tuple[float, float]] = {
    "threshold": (0.0, 1.0),
    "band": (0.0, 1.0),
    "review_after_days": (0.0, 3650.0),
    "struggle_window": (1, 1000),
    "struggle_errors": (1, 1000),
    "avoid_recent": (1, 1000),
    "min_answers": (0, 1000),
    "unlock_threshold": (0.0, 1.0),
    "retry_gap_minutes": (0.0, 525_600.0),
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
    ``avoid_recent``: deprecated; accepted for stored settings, no longer read: the exposure
    order (unseen items first, then the one seen longest ago, never the last
    one) keeps recent items away by itself.
    ``min_answers``: answers on a skill's items needed before it can count as
    mastered, whatever P(known) says (mastery-learning tutors ask for a few);
    where its items differ in difficulty one of them must be above the easiest.
    ``retry_gap_minutes``: a question answered wrongly is not served again
    before this many minutes have passed (0: only never twice in a row).
    ``unlock_threshold``: P(known) of a skill at which the skills that build on
    it open, evidence or not (capped at ``threshold``); the skill itself counts
    as mastered only by the mastery rule, and is confirmed later. None: what
    builds on a skill opens only once it is mastered by that rule.
    ``kind``: the policy that reads these settings (``curriculum.policies.POLICIES``).
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
    min_answers: int = 3
    retry_gap_minutes: float = 10.0
    unlock_threshold: float | None = 0.9
    kind: str = "frontier"

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
        if self.unlock_threshold is not None and not 0 < self.unlock_threshold < 1:
            raise ValueError("unlock_threshold must be in (0, 1) or null")
        if self.min_answers < 0:
            raise ValueError("min_answers must be >= 0")
        if not (math.isfinite(self.retry_gap_minutes) and self.retry_gap_minutes >= 0):
            raise ValueError("retry_gap_minutes must be a number >= 0")
        if self.kind not in POLICIES:
            raise ValueError(f"unknown policy kind {str(self.kind)[:64]!r}; known: {', '.join(sorted(POLICIES))}")

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
        if payload.get("unlock_threshold") is not None:
            payload["unlock_threshold"] = _policy_number("unlock_threshold", payload["unlock_threshold"])
        if "retry_gap_minutes" in payload:
            payload["retry_gap_minutes"] = _policy_number("retry_gap_minutes", payload["retry_gap_minutes"])
        for key in ("review", "remediation"):
            if key in payload and not isinstance(payload[key], bool):
                raise ValueError(f"bad policy settings: {key} must be true or false")
        for key in ("struggle_window", "struggle_errors", "avoid_recent", "min_answers"):
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
    review, remediation, confirm (or done), ``p_correct`` the model's P(the learner
    answers the item correctly), ``expected_gain`` the expected increase of the
    learner's mastery from answering it, ``mastery`` P(known) of ``skill`` now.
    ``struggling`` names the skill that prompted a remediation. ``evidence`` is
    what the learner has shown on ``skill`` so far (answers, and whether one was
    above its easiest level), against ``min_answers`` needed for mastery.
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
    evidence: Evidence | None = None
    min_answers: int = 0

    def reason(self) -> dict[str, Any]:
        reason: dict[str, Any] = {
            "skill": self.skill,
            "why": self.why,
            "p_correct": self.p_correct,
            "expected_gain": self.expected_gain,
            "mastery": self.mastery,
        }
        if self.struggling is not None:
            reason["struggling"] = self.struggling
        if self.why == CONFIRM and self.evidence is not None:
            reason["evidence"] = {
                "answers": self.evidence.answers,
                "needed": self.min_answers,
                "harder": self.evidence.harder,
            }
        return reason

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "done": self.done,
            "reason": self.reason(),
            "goals_mastered": self.goals_mastered,
            "goals_total": self.goals_total,
        }


def seen_from_history(history: Sequence[Answer]) -> dict[str, Seen]:
    """Per item, the learner's record as far as ``history`` (oldest first) tells: where answers carry
    no time their position stands in for it, and the wrong-answer gap cannot be checked."""
    seen: dict[str, Seen] = {}
    for position, answer in enumerate(history):
        before = seen.get(answer.item)
        at = float(answer.at) if answer.at is not None else float(position)
        wrong = (
            answer.at if answer.correct < 0.5 and answer.at is not None else (before.last_wrong_at if before else None)
        )
        seen[answer.item] = Seen((before.answers if before else 0) + 1, at, wrong)
    return seen


ItemLevels = tuple[dict[str, ItemSpec], dict[str, int | None], dict[str, bool]]
"""Items by id, each skill's easiest difficulty level, and whether its items' levels differ (``item_levels``)."""


def item_levels(items: Sequence[ItemSpec]) -> ItemLevels:
    """Items by id, each skill's easiest difficulty level, and whether its items' levels differ. They
    depend on the course only: a server keeps them per course model and passes them to ``skill_evidence``."""
    levels: dict[str, set[int]] = {}
    for item in items:
        for skill in item.skills:
            bucket = levels.setdefault(skill, set())
            if item.difficulty is not None:
                bucket.add(item.difficulty)
    by_id = {item.id: item for item in items}
    easiest = {skill: min(values, default=None) for skill, values in levels.items()}
    differ = {skill: len(values) > 1 for skill, values in levels.items()}
    return by_id, easiest, differ


def skill_evidence(
    items: Sequence[ItemSpec], seen: Mapping[str, Seen], *, levels: ItemLevels | None = None
) -> dict[str, Evidence]:
    """Per skill tested by ``items``: how many answers the learner gave on its items, and whether one
    of them was above the skill's easiest difficulty level (True where its levels do not differ).
    ``levels``: ``item_levels(items)`` where the caller keeps it."""
    by_id, easiest, differ = levels if levels is not None else item_levels(items)
    answers = dict.fromkeys(easiest, 0)
    harder = {skill: not differ[skill] for skill in easiest}
    for item_id, record in seen.items():
        item = by_id.get(item_id)
        if item is None or record.answers <= 0:
            continue
        for skill in item.skills:
            answers[skill] += record.answers
            lowest = easiest[skill]
            if item.difficulty is not None and lowest is not None and item.difficulty > lowest:
                harder[skill] = True
    return {skill: Evidence(answers[skill], harder[skill]) for skill in easiest}


def skill_mastered(probability: float, evidence: Evidence | None, config: PolicyConfig) -> bool:
    """The one mastery rule: P(known) >= ``config.threshold`` on enough evidence (``config.min_answers``
    answers, one above the easiest level where levels differ). ``evidence`` None: a skill no item
    tests, judged on P(known) alone."""
    if probability < config.threshold:
        return False
    if evidence is None or config.min_answers == 0:
        return True
    return evidence.answers >= config.min_answers and evidence.harder


def skill_opens(probability: float, evidence: Evidence | None, config: PolicyConfig) -> bool:
    """Whether what builds on a skill may be practised: the skill is mastered (``skill_mastered``), or
    its P(known) reached ``config.unlock_threshold`` (capped at the threshold), evidence or not. The
    policy and the learner page (a skill is locked while a prerequisite does not open it) apply it."""
    if skill_mastered(probability, evidence, config):
        return True
    return config.unlock_threshold is not None and probability >= min(config.unlock_threshold, config.threshold)


@dataclass(frozen=True)
class ReviewDue:
    """A skill the policy will bring back, and from when (seconds).

    ``reason``: ``fade`` (a model with forgetting puts P(known) below the threshold from ``due_at``:
    the policy then serves it as a review) or ``recheck`` (not practised for ``review_after_days``:
    checked once more before the goals are declared done).
    """

    skill: str
    due_at: float
    reason: str


Catalog = tuple[PrerequisiteGraph, dict[str, list[ItemSpec]]]
"""The graph restricted to the goals, and the items of each of its skills (``catalog_build``)."""


def catalog_build(graph: PrerequisiteGraph, items: Sequence[ItemSpec], goals: tuple[str, ...]) -> Catalog:
    """The graph restricted to the goals (all of it for no goals), and the items of each of its skills.

    They depend on the course, not the learner: a server keeps them per course model and passes them
    to the policy (``catalog=``), which computes them itself otherwise.
    """
    relevant = graph.restricted(goals) if goals else graph
    items_by_skill: dict[str, list[ItemSpec]] = {}
    for item in items:
        for skill in item.skills:
            if skill in relevant:
                items_by_skill.setdefault(skill, []).append(item)
    return relevant, items_by_skill


class Policy(abc.ABC):
    """Picks a learner's next item from what a knowledge-tracing model says of them; pure (no Django).

    The caller reads the model (mastery now and at each skill's last practice, P(correct) of each
    item) and the learner's record; ``candidates`` names the skills the policy may pick, so the
    caller computes the costly look-ahead (expected gain) only for their items; ``choose`` picks.
    ``catalog`` (``catalog_build(graph, items, goals)``) may be passed where the caller keeps it.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def candidates(
        self,
        *,
        mastery: Mapping[str, float],
        graph: PrerequisiteGraph,
        items: Sequence[ItemSpec],
        config: PolicyConfig,
        mastery_before: Mapping[str, float] | None = None,
        history: Sequence[Answer] = (),
        seen: Mapping[str, Seen] | None = None,
        evidence: Mapping[str, Evidence] | None = None,
        catalog: Catalog | None = None,
    ) -> dict[str, str]:
        """Skill id -> why (frontier, review, remediation, confirm) for the skills it may pick now."""

    @abc.abstractmethod
    def choose(
        self,
        *,
        mastery: Mapping[str, float],
        graph: PrerequisiteGraph,
        items: Sequence[ItemSpec],
        config: PolicyConfig,
        p_correct: Mapping[str, float] | None = None,
        gain: Mapping[str, float] | None = None,
        mastery_before: Mapping[str, float] | None = None,
        history: Sequence[Answer] = (),
        last_practice: Mapping[str, float] | None = None,
        now: float | None = None,
        seen: Mapping[str, Seen] | None = None,
        evidence: Mapping[str, Evidence] | None = None,
        catalog: Catalog | None = None,
    ) -> Choice:
        """The next item and why."""

    @abc.abstractmethod
    def reviews(
        self,
        *,
        mastery_before: Mapping[str, float],
        graph: PrerequisiteGraph,
        items: Sequence[ItemSpec],
        config: PolicyConfig,
        last_practice: Mapping[str, float] | None,
        fade_at: Mapping[str, float | None],
    ) -> list[ReviewDue]:
        """The reviews it will bring, soonest first (``fade_at``: per skill, when the model's forgetting
        takes it below the threshold, None: not within the horizon looked at)."""
