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
  where one is needed;
- what builds on a skill opens once its P(known) reaches ``unlock_threshold``
  (where set), evidence or not: a skill the learner already knows need not
  take ``min_answers`` answers before the next one starts. It is still shown
  and counted as mastered only by the rule above, and its confirming answers
  come when their look-ahead gain is the best on offer (before the goals are
  declared done at the latest).

When every goal skill is mastered it returns a Choice with ``done=True``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from curriculum.graph import PrerequisiteGraph
from curriculum.policies.base import (
    CONFIRM,
    DONE,
    FRONTIER,
    REMEDIATION,
    REVIEW,
    Answer,
    Catalog,
    Choice,
    Evidence,
    ItemSpec,
    Policy,
    PolicyConfig,
    ReviewDue,
    Seen,
    catalog_build,
    seen_from_history,
    skill_evidence,
    skill_mastered,
    skill_opens,
)

_ABLATION_RECENT = 3
"""With the exposure control off, the last this many answers' items come last (the order before it)."""


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
    opened: set[str] = field(default_factory=set)
    """Skills whose dependants may be practised: the mastered ones and those at ``unlock_threshold``."""


def _prepare(
    *,
    mastery: Mapping[str, float],
    graph: PrerequisiteGraph,
    items: Sequence[ItemSpec],
    config: PolicyConfig,
    mastery_before: Mapping[str, float] | None,
    history: Sequence[Answer] = (),
    seen: Mapping[str, Seen] | None = None,
    evidence: Mapping[str, Evidence] | None = None,
    catalog: Catalog | None = None,
) -> _State:
    goals = tuple(config.goals) or graph.skills
    relevant, items_by_skill = catalog if catalog is not None else catalog_build(graph, items, tuple(config.goals))
    now = {skill: float(mastery.get(skill, 0.0)) for skill in relevant.skills}
    level = dict(now)
    if not config.review and mastery_before is not None:
        # Without review a skill keeps the mastery it reached at its last practice.
        level = {skill: max(value, float(mastery_before.get(skill, 0.0))) for skill, value in now.items()}
    seen = dict(seen) if seen is not None else seen_from_history(history)
    evidence = dict(evidence) if evidence is not None else skill_evidence(items, seen)
    mastered = {
        skill
        for skill, value in level.items()
        if skill in items_by_skill and skill_mastered(value, evidence.get(skill), config)
    }
    confirming = {
        skill
        for skill, value in level.items()
        if skill in items_by_skill and value >= config.threshold and skill not in mastered
    }
    # A skill no item tests can never be practised; let it not block what depends on it.
    mastered |= {skill for skill in relevant.skills if skill not in items_by_skill}
    opened = mastered | {
        skill
        for skill, value in level.items()
        if skill in items_by_skill and skill_opens(value, evidence.get(skill), config)
    }
    return _State(
        graph=relevant,
        mastery=level,
        mastered=mastered,
        goals=goals,
        items_by_skill=items_by_skill,
        seen=seen,
        evidence=evidence,
        confirming=confirming,
        opened=opened,
    )


def candidate_skills(
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
    """The skills the policy may pick next, each with its reason (frontier, review, remediation, confirm).

    Callers use it to limit costly look-ahead (expected gain) to the items of
    these skills. ``mastery`` is P(known) per skill id now, ``mastery_before``
    P(known) at each skill's last practice (models with forgetting),
    ``history`` the learner's answers, oldest first, ``seen`` the learner's
    record per item (derived from ``history`` when None), ``evidence``
    ``skill_evidence(items, seen)`` where the caller has it already, ``catalog``
    ``catalog_build(graph, items, config.goals)`` where the caller keeps it.
    """
    state = _prepare(
        mastery=mastery,
        graph=graph,
        items=items,
        config=config,
        mastery_before=mastery_before,
        history=history,
        seen=seen,
        evidence=evidence,
        catalog=catalog,
    )
    return _candidates(state, config=config, mastery_before=mastery_before, history=history)[0]


def _candidates(
    state: _State, *, config: PolicyConfig, mastery_before: Mapping[str, float] | None, history: Sequence[Answer]
) -> tuple[dict[str, str], dict[str, str]]:
    """(skill -> why, remediation skill -> the struggling skill that prompted it)."""
    candidates: dict[str, str] = {}
    if state.opened == state.mastered:
        frontier = state.graph.frontier(state.mastered)
    else:
        frontier = [
            skill
            for skill in state.graph.topological_order()
            if skill not in state.mastered and all(parent in state.opened for parent in state.graph.parents(skill))
        ]
    for skill in frontier:
        if skill in state.confirming:
            candidates[skill] = CONFIRM
            continue
        decayed = (
            config.review and mastery_before is not None and float(mastery_before.get(skill, 0.0)) >= config.threshold
        )
        candidates[skill] = REVIEW if decayed else FRONTIER
    prompted: dict[str, str] = {}
    if config.remediation and history:
        item_skills = {item.id: item.skills for items in state.items_by_skill.values() for item in items}
        recent_skills = {
            skill for answer in history[-config.struggle_window :] for skill in item_skills.get(answer.item, ())
        }
        frontier_skills = [skill for skill, why in candidates.items() if why == FRONTIER]
        wrongs = _struggle_scan(history, item_skills, config.struggle_window)
        for skill in frontier_skills:
            ancestors = state.graph.ancestors(skill)
            if _struggle_errors(skill, ancestors, wrongs) < config.struggle_errors:
                continue
            weak = [
                ancestor for ancestor in ancestors if ancestor not in recent_skills and ancestor in state.items_by_skill
            ]
            if weak:
                # The least-known prerequisite, nearest to the struggling skill on ties.
                target = min(weak, key=lambda a: (state.mastery[a], -state.graph.rank(a)))
                if candidates.get(target) != REVIEW:
                    candidates[target] = REMEDIATION
                    prompted[target] = skill
    return candidates, prompted


def _struggle_scan(
    history: Sequence[Answer], item_skills: Mapping[str, tuple[str, ...]], window: int
) -> dict[str, list[tuple[int, bool]]]:
    """One pass over the history, newest first (position 0 is the latest answer): per skill the positions
    and wrongness of its latest ``window`` answers (``window`` >= 1, so the first is its latest answer).
    The struggle rule reads these for every frontier skill, instead of a scan of the history per skill (a
    learner of thousands of answers on a course of 50 skills)."""
    wrongs: dict[str, list[tuple[int, bool]]] = {}
    for position, answer in enumerate(reversed(history)):
        for skill in item_skills.get(answer.item, ()):
            kept = wrongs.setdefault(skill, [])
            if len(kept) < window:
                kept.append((position, answer.correct < 0.5))
    return wrongs


def _struggle_errors(skill: str, ancestors: Iterable[str], wrongs: Mapping[str, list[tuple[int, bool]]]) -> int:
    """Wrong answers among the skill's last ``window`` answers (``_struggle_scan``'s) given since the learner
    last answered one of its prerequisites: a prerequisite checked since starts the struggle afresh, and an
    answer on both counts as the prerequisite's."""
    since = min((wrongs[ancestor][0][0] for ancestor in ancestors if wrongs.get(ancestor)), default=None)
    return sum(1 for position, wrong in wrongs.get(skill, ()) if wrong and (since is None or position < since))


def _stale(
    state: _State, *, config: PolicyConfig, last_practice: Mapping[str, float] | None, now: float | None
) -> str | None:
    """The practised skill longest unpractised beyond ``review_after_days``, or None."""
    if config.review_after_days is None or not last_practice or now is None:
        return None
    limit = now - config.review_after_days * 86_400.0
    stale = [
        (last_practice[skill], state.graph.rank(skill), skill)
        for skill in state.graph.skills
        if skill in state.items_by_skill and last_practice.get(skill) is not None and last_practice[skill] < limit
    ]
    return min(stale)[2] if stale else None


def review_schedule(
    *,
    mastery_before: Mapping[str, float],
    graph: PrerequisiteGraph,
    items: Sequence[ItemSpec],
    config: PolicyConfig,
    last_practice: Mapping[str, float],
    fade_at: Mapping[str, float | None] | None = None,
) -> list[ReviewDue]:
    """The reviews the policy schedules for one learner, soonest first: every goal-relevant skill that was
    mastered at its last practice (``mastery_before`` >= threshold), due at the earlier of when it fades
    (``fade_at``: per skill the first moment P(known) falls below the threshold, None if not within the
    caller's horizon; needs ``config.review``) and ``review_after_days`` after its last practice."""
    relevant, items_by_skill = catalog_build(graph, items, tuple(config.goals))
    due: list[ReviewDue] = []
    for skill in relevant.skills:
        if skill not in items_by_skill or float(mastery_before.get(skill, 0.0)) < config.threshold:
            continue
        options = []
        fades = fade_at.get(skill) if config.review and fade_at else None
        if fades is not None:
            options.append((float(fades), "fade"))
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


def next_item(
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
    exposure: bool = True,
) -> Choice:
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
    the caller has it already (it is computed otherwise). ``exposure`` False
    turns the exposure control off (the order before issue 21, for the policy
    bench's ablation): within a skill, the items of the last three answers
    last, then the band and the gain; no wrong-answer gap.
    Skills absent from ``mastery`` count as unknown (0); items absent from
    ``p_correct`` get P(correct) = 0.2 + 0.7 * mean mastery of their skills.
    """
    state = _prepare(
        mastery=mastery,
        graph=graph,
        items=items,
        config=config,
        mastery_before=mastery_before,
        history=history,
        seen=seen,
        evidence=evidence,
        catalog=catalog,
    )
    goals_mastered = sum(
        skill_mastered(state.mastery.get(goal, 0.0), state.evidence.get(goal), config) for goal in state.goals
    )
    if all(goal in state.mastered for goal in state.goals):
        stale = _stale(state, config=config, last_practice=last_practice, now=now)
        if not stale:
            return Choice(
                item=None, skill=None, why=DONE, done=True, goals_mastered=goals_mastered, goals_total=len(state.goals)
            )
        candidates: dict[str, str] = {stale: REVIEW}
        prompted: dict[str, str] = {}
    else:
        candidates, prompted = _candidates(state, config=config, mastery_before=mastery_before, history=history)
    last = history[-1].item if history else None
    if last is None and state.seen:
        last = max(state.seen.items(), key=lambda pair: pair[1].last_at)[0]
    # A wrongly answered question waits out the gap: its worked answer must not be the answer key.
    wait_until = None if now is None or not exposure else now - config.retry_gap_minutes * 60.0
    recent = {answer.item for answer in history[-_ABLATION_RECENT:]} if not exposure else set()
    low, high = config.band

    def pick(candidates: Mapping[str, str]) -> tuple[Any, ...] | None:
        best: tuple[Any, ...] | None = None
        for skill, why in candidates.items():
            chosen: tuple[Any, ...] | None = None
            pool = state.items_by_skill.get(skill, ())
            # A skill that looks known on thin evidence asks for an item above its easiest level first.
            levels = [item.difficulty for item in pool if item.difficulty is not None]
            easiest = min(levels, default=None)
            want_harder = skill in state.confirming and not state.evidence.get(skill, Evidence(harder=True)).harder
            for item in pool:
                if item.id == last:
                    continue
                record = state.seen.get(item.id)
                if (
                    record is not None
                    and record.last_wrong_at is not None
                    and wait_until is not None
                    and record.last_wrong_at > wait_until
                ):
                    continue
                # Skip items that also test a skill the learner is not ready for.
                if any(
                    other != skill and other in state.graph and other not in state.mastered and other not in candidates
                    for other in item.skills
                ):
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
                key = (
                    (
                        harder or not want_harder,
                        record is None,
                        -record.last_at if record is not None else 0.0,
                        -distance,
                        round(expected, 12),
                    )
                    if exposure
                    else (harder or not want_harder, item.id not in recent, 0.0, -distance, round(expected, 12))
                )
                if chosen is None or key > chosen[0]:
                    chosen = (key, item, probability, expected)
            if chosen is None:
                continue
            _, item, probability, expected = chosen
            # Across skills: remediation first, then confirming a skill that looks known where that opens
            # what builds on it (one more answer), then the largest expected gain, then the earliest in
            # the graph. A skill already opened by ``unlock_threshold`` is confirmed on its gain.
            gates = why == CONFIRM and skill not in state.opened
            skill_key = (why == REMEDIATION, gates, round(expected, 12), -state.graph.rank(skill))
            if best is None or skill_key > best[0]:
                best = (skill_key, item, skill, why, probability, expected)
        return best

    best = pick(candidates)
    if best is None and not all(goal in state.mastered for goal in state.goals):
        # Every question of the candidate skills is waiting out a wrong answer (or was just answered):
        # practise a mastered skill meanwhile rather than give an answer key back.
        best = pick(
            {
                skill: REVIEW
                for skill in state.graph.skills
                if skill in state.mastered and skill in state.items_by_skill and skill not in candidates
            }
        )
    if best is None:
        # No item fits but the one just answered; an item twice in a row teaches nothing new.
        return Choice(item=None, skill=None, why=FRONTIER, goals_mastered=goals_mastered, goals_total=len(state.goals))
    _, item, skill, why, probability, expected = best
    return Choice(
        item=item.id,
        skill=skill,
        why=why,
        p_correct=probability,
        expected_gain=expected,
        mastery=state.mastery[skill],
        struggling=prompted.get(skill),
        goals_mastered=goals_mastered,
        goals_total=len(state.goals),
        evidence=state.evidence.get(skill),
        min_answers=config.min_answers,
    )


class FrontierPolicy(Policy):
    """The frontier policy described at the top of this module."""

    kind = "frontier"
    exposure: ClassVar[bool] = True
    """False only in the policy bench's ablation (``next_item``'s ``exposure``)."""

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
        return candidate_skills(
            mastery=mastery,
            graph=graph,
            items=items,
            config=config,
            mastery_before=mastery_before,
            history=history,
            seen=seen,
            evidence=evidence,
            catalog=catalog,
        )

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
        return next_item(
            mastery=mastery,
            graph=graph,
            items=items,
            config=config,
            p_correct=p_correct,
            gain=gain,
            mastery_before=mastery_before,
            history=history,
            last_practice=last_practice,
            now=now,
            seen=seen,
            evidence=evidence,
            catalog=catalog,
            exposure=self.exposure,
        )

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
        return review_schedule(
            mastery_before=mastery_before,
            graph=graph,
            items=items,
            config=config,
            last_practice=last_practice or {},
            fade_at=fade_at,
        )
