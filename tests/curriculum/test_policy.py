"""The next-item policy: reasons that match the state, no repeats, done, review, remediation."""

from __future__ import annotations

import pytest

from curriculum.graph import PrerequisiteGraph
from curriculum.policies.base import Answer, ItemSpec, PolicyConfig, Seen
from curriculum.policies.frontier import candidate_skills, next_item

# a -> b -> c, a -> d
GRAPH = PrerequisiteGraph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d")])
ITEMS = [ItemSpec(f"{skill}{n}", (skill,)) for skill in "abcd" for n in range(3)]
# These tests are about the choice; the evidence rule (min_answers) has its own tests below.
CONFIG = PolicyConfig(min_answers=0)


def choose(mastery, **kwargs):
    return next_item(mastery=mastery, graph=GRAPH, items=ITEMS, config=kwargs.pop("config", CONFIG), **kwargs)


def test_new_learner_starts_on_the_root():
    choice = choose({})
    assert choice.skill == "a" and choice.why == "frontier" and choice.item.startswith("a")
    assert not choice.done and choice.goals_total == 4 and choice.goals_mastered == 0


def test_reason_fields_match_the_state():
    mastery = {"a": 0.97, "b": 0.4, "c": 0.1, "d": 0.2}
    p_correct = {item.id: 0.3 for item in ITEMS} | {"b1": 0.7, "d0": 0.7}
    gain = {item.id: 0.01 for item in ITEMS} | {"b0": 0.08, "b1": 0.05, "b2": 0.08, "d0": 0.03}
    choice = choose(mastery, p_correct=p_correct, gain=gain)
    # The frontier is {b, d}; b promises more; within b the in-band item wins over a larger gain.
    assert choice.skill == "b" and choice.why == "frontier"
    assert choice.item == "b1"
    assert choice.p_correct == pytest.approx(0.7) and choice.expected_gain == pytest.approx(0.05)
    assert choice.mastery == pytest.approx(0.4)
    assert choice.goals_mastered == 1
    reason = choice.to_json()["reason"]
    assert reason == {
        "skill": "b",
        "why": "frontier",
        "p_correct": choice.p_correct,
        "expected_gain": choice.expected_gain,
        "mastery": choice.mastery,
    }
    # Never a skill whose prerequisites are not mastered, whatever its gain.
    choice = choose(mastery, p_correct=p_correct, gain=gain | {"c0": 5.0})
    assert choice.skill != "c"


def test_highest_gain_frontier_skill_wins():
    mastery = {"a": 0.99, "b": 0.5, "d": 0.5}
    gain = {item.id: 0.02 for item in ITEMS} | {"d2": 0.2}
    assert choose(mastery, gain=gain).item == "d2"


def test_no_item_twice_in_a_row():
    mastery = {"a": 0.5}
    only = [ItemSpec("a0", ("a",)), ItemSpec("a1", ("a",))]
    history = []
    for _ in range(10):
        choice = next_item(mastery=mastery, graph=GRAPH, items=only, config=CONFIG, history=history)
        assert not history or choice.item != history[-1].item
        history.append(Answer(choice.item, 0.0))
    # With one item only, nothing rather than a repeat.
    single = next_item(mastery=mastery, graph=GRAPH, items=only[:1], config=CONFIG, history=[Answer("a0", 1.0)])
    assert single.item is None and not single.done


def test_recent_items_are_avoided_when_others_exist():
    history = [Answer("a0", 0.0), Answer("a1", 0.0)]
    assert choose({"a": 0.5}, history=history).item == "a2"


def test_done_when_every_goal_is_mastered():
    choice = choose({skill: 0.99 for skill in "abcd"})
    assert choice.done and choice.item is None and choice.why == "done"
    assert choice.goals_mastered == choice.goals_total == 4
    # Goals limit what must be mastered: c (and its ancestors a, b) only.
    goals = PolicyConfig(goals=("c",), min_answers=0)
    assert choose({"a": 0.99, "b": 0.99, "c": 0.96, "d": 0.0}, config=goals).done
    not_done = choose({"a": 0.99, "b": 0.99, "c": 0.5, "d": 0.0}, config=goals)
    assert not not_done.done and not_done.skill == "c" and not_done.goals_total == 1


def test_decayed_skill_is_a_review_and_review_off_keeps_it_mastered():
    mastery = {"a": 0.80, "b": 0.3}
    before = {"a": 0.98, "b": 0.3}
    choice = choose(mastery, mastery_before=before)
    assert choice.skill == "a" and choice.why == "review"
    assert choice.mastery == pytest.approx(0.80)
    off = choose(mastery, mastery_before=before, config=PolicyConfig(review=False, min_answers=0))
    assert off.skill in {"b", "d"} and off.why == "frontier"


def test_struggling_sends_back_to_the_weakest_prerequisite():
    mastery = {"a": 0.96, "b": 0.97, "c": 0.2, "d": 0.99}
    history = [Answer("c0", 0.0), Answer("c1", 0.0), Answer("c2", 0.0), Answer("c0", 1.0), Answer("c1", 0.0)]
    choice = choose(mastery, history=history)
    assert choice.why == "remediation" and choice.skill == "a" and choice.struggling == "c"
    assert choice.item.startswith("a")
    # Once a prerequisite was checked the struggle starts afresh: back to c ...
    history += [Answer("a0", 1.0)]
    candidates = candidate_skills(mastery=mastery, graph=GRAPH, items=ITEMS, config=CONFIG, history=history)
    assert candidates == {"c": "frontier"}
    assert choose(mastery, history=history).skill == "c"
    # ... and four more failures send the learner to the prerequisite not checked lately.
    history += [Answer("c2", 0.0), Answer("c0", 0.0), Answer("c1", 0.0), Answer("c2", 0.0)]
    candidates = candidate_skills(mastery=mastery, graph=GRAPH, items=ITEMS, config=CONFIG, history=history)
    assert candidates == {"c": "frontier", "b": "remediation"}
    assert choose(mastery, history=history, config=PolicyConfig(remediation=False, min_answers=0)).skill == "c"
    # Few errors: no remediation.
    calm = [Answer("c0", 0.0), Answer("c1", 1.0), Answer("c2", 1.0)]
    assert choose(mastery, history=calm).why == "frontier"


def test_items_needing_an_unready_skill_are_skipped():
    items = ITEMS + [ItemSpec("bc", ("b", "c"))]
    gain = {"bc": 9.0}
    choice = next_item(mastery={"a": 0.99, "d": 0.99}, graph=GRAPH, items=items, config=CONFIG, gain=gain)
    assert choice.item != "bc" and choice.skill == "b"


def test_config_from_json_rejects_bad_settings():
    config = PolicyConfig.from_json({"threshold": 0.9, "band": [0.5, 0.8], "goals": ["c"], "review": False})
    assert config.threshold == 0.9 and config.band == (0.5, 0.8) and config.goals == ("c",)
    assert PolicyConfig.from_json(config.to_json()) == config
    for bad in (
        {"thresold": 0.9},
        {"threshold": 1.5},
        {"band": [0.9, 0.1]},
        {"review": "yes"},
        {"goals": "c"},
        {"struggle_window": 2.5},
    ):
        with pytest.raises(ValueError):
            PolicyConfig.from_json(bad)


def test_skills_unpractised_for_days_are_checked_before_done():
    day = 86_400.0
    mastered = {skill: 0.99 for skill in "abcd"}
    last = {"a": 0.0, "b": 5 * day, "c": 5 * day, "d": 1 * day}
    choice = choose(mastered, last_practice=last, now=5.5 * day)
    # a and d are stale; a (the longest unpractised) comes first.
    assert not choice.done and choice.why == "review" and choice.skill == "a"
    last |= {"a": 5.5 * day, "d": 5.5 * day}
    assert choose(mastered, last_practice=last, now=5.6 * day).done
    assert choose(
        mastered, last_practice={"a": 0.0}, now=9 * day, config=PolicyConfig(review_after_days=None, min_answers=0)
    ).done


# Exposure control and the evidence behind mastery (issue 21).

from curriculum.policies.base import Evidence, skill_evidence, skill_mastered  # noqa: E402

POOL = [ItemSpec(f"s{n:02d}", ("s",), difficulty=1 + n % 3) for n in range(12)]
ONE = PrerequisiteGraph(["s"], [])


def _walk(answers: int, correct, *, config=None, mastery=0.5, minutes=1.0):
    config = config or PolicyConfig()
    """Answer ``answers`` questions of one skill, one a minute; ``correct(n)`` says which were right."""
    history: list[Answer] = []
    seen: dict[str, Seen] = {}
    shown: list[str | None] = []
    for n in range(answers):
        now = n * 60.0 * minutes
        choice = next_item(
            mastery={"s": mastery}, graph=ONE, items=POOL, config=config, history=history, seen=seen, now=now
        )
        shown.append(choice.item)
        if choice.item is None:
            continue
        right = correct(n)
        history.append(Answer(choice.item, float(right), now))
        before = seen.get(choice.item)
        seen[choice.item] = Seen(
            (before.answers if before else 0) + 1, now, now if not right else (before.last_wrong_at if before else None)
        )
    return shown


def test_no_question_twice_while_unseen_ones_remain():
    shown = _walk(30, lambda n: n % 7 != 6)
    assert len(set(shown[:12])) == 12  # the whole pool before any repeat
    # Then repeats go to the one seen longest ago that is not waiting out a wrong answer.
    assert None not in shown and all(shown[n] != shown[n - 1] for n in range(1, 30))


def test_repeats_take_the_question_seen_longest_ago():
    shown = _walk(24, lambda n: True)
    assert shown[12:24] == shown[:12]


def test_a_wrong_answer_waits_out_the_gap():
    config = PolicyConfig(retry_gap_minutes=30)
    shown = _walk(40, lambda n: n != 0, config=config)  # the first question is answered wrongly
    first = shown[0]
    # One question a minute: the pool is used up after 12, but the wrongly answered one waits 30 minutes.
    assert first not in shown[1:30]
    assert first in shown[30:]
    # With no question left but that one and the last, nothing rather than a premature repeat.
    pool = POOL[:2]
    seen = {"s00": Seen(1, 0.0, 0.0), "s01": Seen(1, 60.0)}
    choice = next_item(
        mastery={"s": 0.5},
        graph=ONE,
        items=pool,
        config=config,
        history=[Answer("s00", 0.0, 0.0), Answer("s01", 1.0, 60.0)],
        seen=seen,
        now=120.0,
    )
    assert choice.item is None and not choice.done


def test_never_mastered_before_the_minimum_number_of_answers():
    config = PolicyConfig(min_answers=3)
    history, seen = [], {}
    for n in range(5):
        choice = next_item(
            mastery={"s": 0.99}, graph=ONE, items=POOL, config=config, history=history, seen=seen, now=n * 600.0
        )
        evidence = skill_evidence(POOL, seen)["s"]
        assert skill_mastered(0.99, evidence, config) == (evidence.answers >= 3 and evidence.harder)
        if n < 3:
            assert not choice.done and choice.why == "confirm" and choice.goals_mastered == 0
            assert choice.reason()["evidence"] == {"answers": n, "needed": 3, "harder": evidence.harder}
        if choice.done:
            break
        # The first confirming item is above the easiest level, so the evidence includes a harder one.
        assert n or next(item for item in POOL if item.id == choice.item).difficulty > 1
        history.append(Answer(choice.item, 1.0, n * 600.0))
        seen[choice.item] = Seen(1, n * 600.0)
    assert choice.done and n == 3 and choice.goals_mastered == 1


def test_mastery_needs_an_answer_above_the_easiest_level():
    config = PolicyConfig(min_answers=3)
    easy = {item.id: Seen(1, float(n)) for n, item in enumerate(POOL) if item.difficulty == 1}
    evidence = skill_evidence(POOL, easy)["s"]
    assert evidence == Evidence(answers=4, harder=False) and not skill_mastered(0.99, evidence, config)
    assert skill_mastered(0.99, skill_evidence(POOL, easy | {"s01": Seen(1, 9.0)})["s"], config)
    # Items of one level (or none given): the count alone decides.
    flat = [ItemSpec(f"f{n}", ("f",)) for n in range(4)]
    assert skill_mastered(0.99, skill_evidence(flat, {"f0": Seen(3, 1.0)})["f"], config)
    assert not skill_mastered(0.99, skill_evidence(flat, {"f0": Seen(2, 1.0)})["f"], config)
    # P(known) below the threshold is never mastered, however much evidence.
    assert not skill_mastered(0.9, Evidence(answers=50, harder=True), config)


def test_config_reads_the_new_settings():
    config = PolicyConfig.from_json({"min_answers": 5, "retry_gap_minutes": 2.5})
    assert config.min_answers == 5 and config.retry_gap_minutes == 2.5
    assert PolicyConfig.from_json(config.to_json()) == config
    for bad in (
        {"min_answers": -1},
        {"min_answers": 1.5},
        {"retry_gap_minutes": -1},
        {"retry_gap_minutes": True},
        {"retry_gap_minutes": "soon"},
    ):
        with pytest.raises(ValueError):
            PolicyConfig.from_json(bad)


# Dependants open on the estimate; the skill is confirmed later (issue 21, the evidence rule's cost).


def test_unlock_threshold_opens_dependants_before_the_evidence_is_in():
    # "a" looks known after one answer: without unlock_threshold it gates b and d until confirmed.
    seen = {"a0": Seen(1, 0.0)}
    mastery = {"a": 0.97, "b": 0.3, "d": 0.3}
    gain = {item.id: 0.1 for item in ITEMS} | {"a1": 0.01, "a2": 0.01}
    strict = PolicyConfig(min_answers=3, unlock_threshold=None)
    assert candidate_skills(mastery=mastery, graph=GRAPH, items=ITEMS, config=strict, seen=seen) == {"a": "confirm"}
    choice = choose(mastery, config=strict, seen=seen, gain=gain)
    assert choice.skill == "a" and choice.why == "confirm"
    opened = PolicyConfig(min_answers=3, unlock_threshold=0.9)
    candidates = candidate_skills(mastery=mastery, graph=GRAPH, items=ITEMS, config=opened, seen=seen)
    assert candidates == {"a": "confirm", "b": "frontier", "d": "frontier"}
    # The confirmation waits while new skills promise more; "a" is still not mastered (shown or counted).
    choice = choose(mastery, config=opened, seen=seen, gain=gain)
    assert choice.skill in ("b", "d") and choice.goals_mastered == 0
    # Below the bar nothing opens; a skill two steps on waits for its own prerequisite.
    assert "b" not in candidate_skills(mastery={"a": 0.85}, graph=GRAPH, items=ITEMS, config=opened, seen=seen)
    assert "c" not in candidate_skills(
        mastery={"a": 0.97, "b": 0.5}, graph=GRAPH, items=ITEMS, config=opened, seen=seen
    )


def test_goals_are_done_only_once_every_opened_skill_is_confirmed():
    config = PolicyConfig(min_answers=3, unlock_threshold=0.9, review_after_days=None)
    known = {skill: 0.99 for skill in "abcd"}
    seen = {f"{skill}{n}": Seen(1, float(n)) for skill in "bcd" for n in range(3)} | {"a0": Seen(1, 0.0)}
    choice = choose(known, config=config, seen=seen)
    assert not choice.done and choice.skill == "a" and choice.why == "confirm" and choice.goals_mastered == 3
    seen |= {"a1": Seen(1, 1.0), "a2": Seen(1, 2.0)}
    assert choose(known, config=config, seen=seen).done


def test_unlock_threshold_is_capped_at_the_mastery_threshold():
    config = PolicyConfig(threshold=0.8, min_answers=3, unlock_threshold=0.9)
    seen = {"a0": Seen(1, 0.0)}
    assert "b" in candidate_skills(mastery={"a": 0.85}, graph=GRAPH, items=ITEMS, config=config, seen=seen)


def test_config_reads_unlock_threshold():
    assert PolicyConfig.from_json({"unlock_threshold": 0.9}).unlock_threshold == 0.9
    assert PolicyConfig.from_json({"unlock_threshold": None}).unlock_threshold is None
    config = PolicyConfig.from_json({"unlock_threshold": 0.5})
    assert PolicyConfig.from_json(config.to_json()) == config
    for bad in (
        {"unlock_threshold": 0},
        {"unlock_threshold": 1},
        {"unlock_threshold": "high"},
        {"unlock_threshold": True},
    ):
        with pytest.raises(ValueError):
            PolicyConfig.from_json(bad)


def test_exposure_off_is_the_order_before_issue_21():
    # The bench's ablation: the last three answers' items last, then the band; no unseen-first order.
    history = [Answer("s00", 1.0, 0.0), Answer("s01", 1.0, 60.0), Answer("s02", 1.0, 120.0)]
    seen = {answer.item: Seen(1, answer.at) for answer in history} | {"s05": Seen(1, -600.0, -600.0)}
    p_correct = {item.id: 0.3 for item in POOL} | {"s05": 0.7, "s00": 0.7}
    kwargs = dict(mastery={"s": 0.5}, graph=ONE, items=POOL, config=CONFIG, history=history, seen=seen, now=180.0)
    assert next_item(**kwargs, p_correct=p_correct, exposure=False).item == "s05"  # seen, wrong, in band
    assert next_item(**kwargs, p_correct=p_correct).item not in seen  # exposure control: unseen first


# The struggle rule's errors, counted from one pass over the history (``_struggle_scan``), against the rule
# as written: per skill, walk back from the latest answer, stop at an answer on a prerequisite or once
# ``window`` answers on the skill were seen, and count the wrong ones.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from curriculum.policies.frontier import _struggle_errors, _struggle_scan  # noqa: E402


def _struggle_errors_by_walking_back(skill, ancestors, history, item_skills, window):
    errors = answered = 0
    for answer in reversed(history):
        skills = item_skills.get(answer.item, ())
        if set(ancestors).intersection(skills) or answered == window:
            break
        if skill in skills:
            answered += 1
            errors += answer.correct < 0.5
    return errors


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.sets(st.integers(0, 5), min_size=1, max_size=3), min_size=1, max_size=8),
    answers=st.lists(st.tuples(st.integers(0, 9), st.sampled_from([0.0, 0.3, 1.0])), max_size=60),
    edges=st.sets(st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda e: e[0] < e[1]), max_size=8),
    window=st.integers(1, 6),
)
def test_the_one_pass_struggle_count_is_the_walk_back_rule(items, answers, edges, window):
    skills = [f"s{n}" for n in range(6)]
    graph = PrerequisiteGraph(skills, [(f"s{a}", f"s{b}") for a, b in edges])
    item_skills = {f"i{n}": tuple(sorted(f"s{k}" for k in tested)) for n, tested in enumerate(items)}
    history = [Answer(f"i{item}", correct) for item, correct in answers]  # i8, i9 may be unknown items
    wrongs = _struggle_scan(history, item_skills, window)
    for skill in skills:
        ancestors = graph.ancestors(skill)
        assert _struggle_errors(skill, ancestors, wrongs) == _struggle_errors_by_walking_back(
            skill, ancestors, history, item_skills, window
        )
