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
  target band (hard enough to teach, easy enough not to discourage);
- exposure control: within a skill a question the learner has not seen comes
  first; one is repeated only when the skill's pool is used up, and then the
  one seen longest ago; a question answered wrongly is not served again until
  ``retry_gap_minutes`` have passed (its explanation needs time to sink in);
- mastery needs evidence: a skill counts as mastered only when P(known) >=
  ``threshold`` *and* the learner has answered at least ``min_answers`` items
  of it, at least one of them above the skill's easiest difficulty level
  where its items differ in difficulty (``skill_mastered``, the one rule the
  learner page and the API show too). A skill that looks known on thinner
  evidence stays a candidate (a *confirm*), practised with a harder item
  where one is needed.

When every goal skill is mastered it returns a Choice with ``done=True``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from curriculum.graph import PrerequisiteGraph

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
    "threshold": (0.0, 1.0), "band": (0.0, 1.0), "review_after_days": (0.0, 3650.0),
    "struggle_window": (1, 1000), "struggle_errors": (1, 1000), "avoid_recent": (1, 1000),
    "min_answers": (0, 1000), "retry_gap_minutes": (0.0, 525_600.0),
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
    ``avoid_recent``: accepted for stored settings, no longer read: the exposure
    order (unseen items first, then the one seen longest ago, never the last
    one) keeps recent items away by itself.
    ``min_answers``: answers on a skill's items needed before it can count as
    mastered, whatever P(known) says (mastery-learning tutors ask for a few);
    where its items differ in difficulty one of them must be above the easiest.
    ``retry_gap_minutes``: a question answered wrongly is not served again
    before this many minutes have passed (0: only never twice in a row).
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
        if self.min_answers < 0:
            raise ValueError("min_answers must be >= 0")
        if not (math.isfinite(self.retry_gap_minutes) and self.retry_gap_minutes >= 0):
            raise ValueError("retry_gap_minutes must be a number >= 0")

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
        reason = {"skill": self.skill, "why": self.why, "p_correct": self.p_correct,
                  "expected_gain": self.expected_gain, "mastery": self.mastery}
        if self.struggling is not None:
            reason["struggling"] = self.struggling
        if self.why == CONFIRM and self.evidence is not None:
            reason["evidence"] = {"answers": self.evidence.answers, "needed": self.min_answers,
                                  "harder": self.evidence.harder}
        return reason

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "done": self.done, "reason": self.reason(),
                "goals_mastered": self.goals_mastered, "goals_total": self.goals_total}


def seen_from_history(history: Sequence[Answer]) -> dict[str, Seen]:
    """Per item, the learner's record as far as ``history`` (oldest first) tells: where answers carry
    no time their position stands in for it, and the wrong-answer gap cannot be checked."""
    seen: dict[str, Seen] = {}
    for position, answer in enumerate(history):
        before = seen.get(answer.item)
        at = float(answer.at) if answer.at is not None else float(position)
        wrong = answer.at if answer.correct < 0.5 and answer.at is not None else (
            before.last_wrong_at if before else None)
        seen[answer.item] = Seen((before.answers if before else 0) + 1, at, wrong)
    return seen


_levels: OrderedDict[int, tuple[Any, dict[str, ItemSpec], dict[str, int | None], dict[str, bool]]] = OrderedDict()


def _item_levels(items: Sequence[ItemSpec]) -> tuple[dict[str, ItemSpec], dict[str, int | None], dict[str, bool]]:
    """Per course (cached by the identity of ``items``, as ``catalog``): items by id, each skill's
    easiest difficulty level, and whether its items' levels differ."""
    cached = _levels.get(id(items))
    if cached is not None and cached[0] is items:
        return cached[1], cached[2], cached[3]
    levels: dict[str, set[int]] = {}
    for item in items:
        for skill in item.skills:
            bucket = levels.setdefault(skill, set())
            if item.difficulty is not None:
                bucket.add(item.difficulty)
    by_id = {item.id: item for item in items}
    easiest = {skill: min(values, default=None) for skill, values in levels.items()}
    differ = {skill: len(values) > 1 for skill, values in levels.items()}
    _levels[id(items)] = (items, by_id, easiest, differ)
    while len(_levels) > _CATALOGS:
        _levels.popitem(last=False)
    return by_id, easiest, differ


def skill_evidence(items: Sequence[ItemSpec], seen: Mapping[str, Seen]) -> dict[str, Evidence]:
    """Per skill tested by ``items``: how many answers the learner gave on its items, and whether one
    of them was above the skill's easiest difficulty level (True where its levels do not differ)."""
    by_id, easiest, differ = _item_levels(items)
    answers = dict.fromkeys(easiest, 0)
    harder = {skill: not differ[skill] for skill in easiest}
    for item_id, record in seen.items():
        item = by_id.get(item_id)
        if item is None or record.answers <= 0:
            continue
        for skill in item.skills:
            answers[skill] += record.answers
            if item.difficulty is not None and easiest[skill] is not None and item.difficulty > easiest[skill]:
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


@dataclass
class _State:
    """Derived views of the inputs shared by candidate selection and item choice."""

    graph: PrerequisiteGraph
    mastery: dict[str, float]
    mastered: set[str]
    goals: tuple[str, ...]
    items_by_skill: dict[str, list[ItemSpec]] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    confirming: set[str] = field(default_factory=set)


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
             config: PolicyConfig, mastery_before: Mapping[str, float] | None,
             history: Sequence[Answer] = (), seen: Mapping[str, Seen] | None = None,
             evidence: Mapping[str, Evidence] | None = None) -> _State:
    goals = tuple(config.goals) or graph.skills
    relevant, items_by_skill = catalog(graph, items, tuple(config.goals))
    now = {skill: float(mastery.get(skill, 0.0)) for skill in relevant.skills}
    level = dict(now)
    if not config.review and mastery_before is not None:
        # Without review a skill keeps the mastery it reached at its last practice.
        level = {skill: max(value, float(mastery_before.get(skill, 0.0))) for skill, value in now.items()}
    seen = dict(seen) if seen is not None else seen_from_history(history)
    evidence = dict(evidence) if evidence is not None else skill_evidence(items, seen)
    mastered = {skill for skill, value in level.items()
                if skill in items_by_skill and skill_mastered(value, evidence.get(skill), config)}
    confirming = {skill for skill, value in level.items()
                  if skill in items_by_skill and value >= config.threshold and skill not in mastered}
    # A skill no item tests can never be practised; let it not block what depends on it.
    mastered |= {skill for skill in relevant.skills if skill not in items_by_skill}
    return _State(graph=relevant, mastery=level, mastered=mastered, goals=goals, items_by_skill=items_by_skill,
                  seen=seen, evidence=evidence, confirming=confirming)


def candidate_skills(*, mastery: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
                     config: PolicyConfig, mastery_before: Mapping[str, float] | None = None,
                     history: Sequence[Answer] = (), seen: Mapping[str, Seen] | None = None,
                     evidence: Mapping[str, Evidence] | None = None) -> dict[str, str]:
    """The skills the policy may pick next, each with its reason (frontier, review, remediation, confirm).

    Callers use it to limit costly look-ahead (expected gain) to the items of
    these skills. ``mastery`` is P(known) per skill id now, ``mastery_before``
    P(known) at each skill's last practice (models with forgetting),
    ``history`` the learner's answers, oldest first, ``seen`` the learner's
    record per item (derived from ``history`` when None), ``evidence``
    ``skill_evidence(items, seen)`` where the caller has it already.
    """
    state = _prepare(mastery=mastery, graph=graph, items=items, config=config, mastery_before=mastery_before,
                     history=history, seen=seen, evidence=evidence)
    return _candidates(state, config=config, mastery_before=mastery_before, history=history)[0]


def _candidates(state: _State, *, config: PolicyConfig, mastery_before: Mapping[str, float] | None,
                history: Sequence[Answer]) -> tuple[dict[str, str], dict[str, str]]:
    """(skill -> why, remediation skill -> the struggling skill that prompted it)."""
    candidates: dict[str, str] = {}
    for skill in state.graph.frontier(state.mastered):
        if skill in state.confirming:
            candidates[skill] = CONFIRM
            continue
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


def review_schedule(*, mastery_before: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
                    config: PolicyConfig, last_practice: Mapping[str, float],
                    fade_at: Mapping[str, float | None] | None = None) -> list[ReviewDue]:
    """The reviews the policy schedules for one learner, soonest first: every goal-relevant skill that was
    mastered at its last practice (``mastery_before`` >= threshold), due at the earlier of when it fades
    (``fade_at``: per skill the first moment P(known) falls below the threshold, None if not within the
    caller's horizon; needs ``config.review``) and ``review_after_days`` after its last practice."""
    relevant, items_by_skill = catalog(graph, items, tuple(config.goals))
    due: list[ReviewDue] = []
    for skill in relevant.skills:
        if skill not in items_by_skill or float(mastery_before.get(skill, 0.0)) < config.threshold:
            continue
        options = []
        if config.review and fade_at and fade_at.get(skill) is not None:
            options.append((float(fade_at[skill]), "fade"))
        if config.review_after_days is not None and last_practice.get(skill) is not None:
            options.append((float(last_practice[skill]) + config.review_after_days * 86_400.0, "recheck"))
        if options:
            at, reason = min(options)
            due.append(ReviewDue(skill, at, reason))
    return sorted(due, key=lambda review: (review.due_at, relevant.rank(review.skill)))


def _fallback_p(item: ItemSpec, mastery: Mapping[str, float]) -> float:
    # A guess of 0.2 and a slip of 0.1 over the mean mastery of the item's skills.
    known = [mastery.get(skill, 0.0) for skill in item.skills] or [0.0]
    return 0.2 + 0.7 * sum(known) / len(known)


def next_item(*, mastery: Mapping[str, float], graph: PrerequisiteGraph, items: Sequence[ItemSpec],
              config: PolicyConfig, p_correct: Mapping[str, float] | None = None,
              gain: Mapping[str, float] | None = None, mastery_before: Mapping[str, float] | None = None,
              history: Sequence[Answer] = (), last_practice: Mapping[str, float] | None = None,
              now: float | None = None, seen: Mapping[str, Seen] | None = None,
              evidence: Mapping[str, Evidence] | None = None) -> Choice:
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
    ``seen``: per item id, the learner's whole record on it (answers, last
    answer, last wrong answer; seconds on the same clock as ``now``): the
    exposure control and the evidence behind mastery read it. None derives it
    from ``history`` (then the wrong-answer gap is checked only where answers
    carry their time). ``evidence``: ``skill_evidence(items, seen)`` where
    the caller has it already (it is computed otherwise).
    Skills absent from ``mastery`` count as unknown (0); items absent from
    ``p_correct`` get P(correct) = 0.2 + 0.7 * mean mastery of their skills.
    """
    state = _prepare(mastery=mastery, graph=graph, items=items, config=config, mastery_before=mastery_before,
                     history=history, seen=seen, evidence=evidence)
    goals_mastered = sum(skill_mastered(state.mastery.get(goal, 0.0), state.evidence.get(goal), config)
                         for goal in state.goals)
    if all(goal in state.mastered for goal in state.goals):
        stale = _stale(state, config=config, last_practice=last_practice, now=now)
        if not stale:
            return Choice(item=None, skill=None, why=DONE, done=True, goals_mastered=goals_mastered,
                          goals_total=len(state.goals))
        candidates, prompted = {stale: REVIEW}, {}
    else:
        candidates, prompted = _candidates(state, config=config, mastery_before=mastery_before, history=history)
    last = history[-1].item if history else None
    if last is None and state.seen:
        last = max(state.seen.items(), key=lambda pair: pair[1].last_at)[0]
    # A wrongly answered question waits out the gap: its worked answer must not be the answer key.
    wait_until = None if now is None else now - config.retry_gap_minutes * 60.0
    low, high = config.band

    def pick(candidates: Mapping[str, str]) -> tuple | None:
        best: tuple | None = None
        for skill, why in candidates.items():
            chosen: tuple | None = None
            pool = state.items_by_skill.get(skill, ())
            # A skill that looks known on thin evidence asks for an item above its easiest level first.
            levels = [item.difficulty for item in pool if item.difficulty is not None]
            easiest = min(levels, default=None)
            want_harder = skill in state.confirming and not state.evidence.get(skill, Evidence(harder=True)).harder
            for item in pool:
                if item.id == last:
                    continue
                record = state.seen.get(item.id)
                if (record is not None and record.last_wrong_at is not None and wait_until is not None
                        and record.last_wrong_at > wait_until):
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
                harder = easiest is not None and item.difficulty is not None and item.difficulty > easiest
                # Within a skill: a harder item where the evidence needs one, then never seen, then seen
                # longest ago (a repeat only once the pool is used up), then in (or nearest) the band,
                # then the larger gain; the earliest listed item wins full ties, so choices are reproducible.
                key = (harder or not want_harder, record is None, -record.last_at if record is not None else 0.0,
                       -distance, round(expected, 12))
                if chosen is None or key > chosen[0]:
                    chosen = (key, item, probability, expected)
            if chosen is None:
                continue
            _, item, probability, expected = chosen
            # Across skills: remediation first, then confirming a skill that looks known (one more answer
            # opens what builds on it), then the largest expected gain, then the earliest in the graph.
            skill_key = (why == REMEDIATION, why == CONFIRM, round(expected, 12), -state.graph.rank(skill))
            if best is None or skill_key > best[0]:
                best = (skill_key, item, skill, why, probability, expected)
        return best

    best = pick(candidates)
    if best is None and not all(goal in state.mastered for goal in state.goals):
        # Every question of the candidate skills is waiting out a wrong answer (or was just answered):
        # practise a mastered skill meanwhile rather than give an answer key back.
        best = pick({skill: REVIEW for skill in state.graph.skills
                     if skill in state.mastered and skill in state.items_by_skill and skill not in candidates})
    if best is None:
        # No item fits but the one just answered; an item twice in a row teaches nothing new.
        return Choice(item=None, skill=None, why=FRONTIER, goals_mastered=goals_mastered,
                      goals_total=len(state.goals))
    _, item, skill, why, probability, expected = best
    return Choice(item=item.id, skill=skill, why=why, p_correct=probability, expected_gain=expected,
                  mastery=state.mastery[skill], struggling=prompted.get(skill), goals_mastered=goals_mastered,
                  goals_total=len(state.goals), evidence=state.evidence.get(skill), min_answers=config.min_answers)
