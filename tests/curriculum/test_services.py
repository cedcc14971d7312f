"""Curriculum services against the database: import, learned edges, graph, next item."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from curriculum.models import Course, Item, Prerequisite, Skill
from curriculum.services import CurriculumError, curriculum_import, graph_for_course, learned_edges_store
from tutor.actions import next_item_choose
from tutor.models import Learner

DOCUMENT = {
    "course": {"id": "fractions", "name": "Fractions"},
    "skills": [
        {"id": "count", "name": "Counting"},
        {"id": "add", "name": "Adding", "description": "whole numbers"},
        {"id": "frac-equiv", "name": "Equivalent fractions"},
        {"id": "frac-add", "name": "Adding fractions"},
    ],
    "items": [
        {"id": f"{skill}-{n}", "skills": [skill], "body": f"{skill} question {n}", "answer": str(n)}
        for skill in ("count", "add", "frac-equiv", "frac-add")
        for n in range(3)
    ]
    + [
        {
            "id": "mix",
            "skills": ["add", "count"],
            "body": "2+3",
            "answer": "5",
            "choices": ["4", "5"],
            "answer_format": "",
            "explanation": "count on",
            "difficulty": 2,
        }
    ],
    "prerequisites": [
        {"from": "count", "to": "add"},
        {"from": "add", "to": "frac-equiv"},
        {"from": "frac-equiv", "to": "frac-add"},
    ],
}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def course(db) -> Course:
    return Course.objects.create(slug="fractions", name="Fractions")


def counts(course):
    return (
        Skill.objects.filter(course=course).count(),
        Item.objects.filter(course=course).count(),
        Prerequisite.objects.filter(course=course).count(),
        Item.skills.through.objects.count(),
    )


@pytest.mark.django_db
def test_import_creates_everything_and_is_idempotent(course):
    summary = curriculum_import(course=course, document=DOCUMENT)
    assert summary["skills"] == {"created": 4, "updated": 0, "unchanged": 0}
    assert summary["items"] == {"created": 13, "updated": 0, "unchanged": 0}
    assert summary["prerequisites"] == {"created": 3, "unchanged": 0}
    assert counts(course) == (4, 13, 3, 14)
    mix = Item.objects.get(course=course, external_id="mix")
    assert mix.choices == ["4", "5"] and mix.difficulty == 2 and mix.explanation == "count on"
    assert sorted(mix.skills.values_list("external_id", flat=True)) == ["add", "count"]

    again = curriculum_import(course=course, document=DOCUMENT)
    assert again["skills"] == {"created": 0, "updated": 0, "unchanged": 4}
    assert again["items"] == {"created": 0, "updated": 0, "unchanged": 13}
    assert again["prerequisites"] == {"created": 0, "unchanged": 3}
    assert counts(course) == (4, 13, 3, 14)

    changed = copy.deepcopy(DOCUMENT)
    changed["skills"][0]["name"] = "Counting objects"
    changed["items"][-1]["body"] = "2 + 3 = ?"
    changed["items"][-1]["skills"] = ["add"]
    summary = curriculum_import(course=course, document=changed)
    assert summary["skills"]["updated"] == 1 and summary["items"]["updated"] == 1
    assert Skill.objects.get(course=course, external_id="count").name == "Counting objects"
    mix.refresh_from_db()
    assert mix.body == "2 + 3 = ?" and list(mix.skills.values_list("external_id", flat=True)) == ["add"]
    assert counts(course)[:3] == (4, 13, 3)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["prerequisites"].append({"from": "frac-add", "to": "count"}),
            "cycle: count -> add -> frac-equiv -> frac-add -> count",
        ),
        (lambda d: d["items"].append({"id": "x", "skills": ["nope"]}), "unknown skill(s) nope"),
        (lambda d: d["items"].append(dict(d["items"][0])), "duplicate item id(s): count-0"),
        (lambda d: d["skills"].append({"id": "add"}), "duplicate skill id(s): add"),
        (lambda d: d["items"][-1].update(difficulty="hard"), "difficulty must be null or a non-negative integer"),
        (lambda d: d["items"][-1].update(skills="add"), "skills must be a non-empty list"),
        (lambda d: d["prerequisites"].append({"from": "add", "to": "zzz"}), "unknown skill 'zzz'"),
        (lambda d: d.update(prerequisite=[]), "unknown top-level key(s) prerequisite"),
        (lambda d: d["skills"][1].update(name=["x"]), "skills[1].name must be a string"),
    ],
)
@pytest.mark.django_db
def test_bad_document_is_rejected_whole(course, mutate, message):
    document = copy.deepcopy(DOCUMENT)
    mutate(document)
    with pytest.raises(CurriculumError) as raised:
        curriculum_import(course=course, document=document)
    assert message in raised.value.message
    # The error comes from the last part of the document: nothing before it was kept.
    assert counts(course) == (0, 0, 0, 0)


@pytest.mark.django_db
def test_cycle_through_edges_already_stored_is_rejected(course):
    curriculum_import(course=course, document=DOCUMENT)
    with pytest.raises(CurriculumError, match="cycle: .*frac-add -> count"):
        curriculum_import(course=course, document={"prerequisites": [{"from": "frac-add", "to": "count"}]})
    assert counts(course)[2] == 3


@pytest.mark.django_db
def test_learned_edges_never_replace_authored_ones(course):
    curriculum_import(course=course, document=DOCUMENT)
    stored = learned_edges_store(
        course=course,
        fit_pk=None,
        edges=[
            ("count", "add", 0.3),  # authored already: skipped
            ("count", "frac-equiv", 0.9),
            ("frac-add", "count", 0.8),  # would close a cycle with authored edges
            ("add", "frac-add", 0.2),  # below the graph's default min_weight
            ("nope", "add", 0.9),
            ("add", "add", 0.9),
        ],
    )
    assert stored == 3
    authored = Prerequisite.objects.get(course=course, source__external_id="count", target__external_id="add")
    assert authored.origin == "authored" and authored.weight == 1.0
    assert Prerequisite.objects.filter(course=course, origin="authored").count() == 3

    graph = graph_for_course(course=course)
    assert graph.edge("count", "frac-equiv").origin == "learned"
    assert graph.edge("frac-add", "count") is None  # cycle-closing learned edge left out
    assert graph.edge("add", "frac-add") is None
    assert graph_for_course(course=course, min_weight=0.1).edge("add", "frac-add").weight == 0.2
    assert graph_for_course(course=course, include_learned=False).edge("count", "frac-equiv") is None

    # A new learned set replaces the old one.
    assert learned_edges_store(course=course, fit_pk=None, edges=[("count", "frac-add", 0.7)]) == 1
    learned = list(
        Prerequisite.objects.filter(course=course, origin="learned").values_list(
            "source__external_id", "target__external_id"
        )
    )
    assert learned == [("count", "frac-add")]


def answer(course, learner, item, correct, at):
    from tutor.actions import answers_record

    answers_record(
        course=course,
        rows=[
            {
                "id": f"{learner}-{at.timestamp()}",
                "learner": learner,
                "item": item,
                "correct": correct,
                "timestamp": at.isoformat(),
            }
        ],
    )


@pytest.mark.django_db
def test_next_item_follows_the_graph_and_never_repeats(course):
    from tracing.services import course_model, learner_state

    curriculum_import(course=course, document=DOCUMENT)
    learner = Learner.objects.create(course=course, external_id="u1")
    choice = next_item_choose(course=course, learner=learner, now=START)
    assert choice.skill == "count" and choice.why == "frontier" and choice.item.startswith("count")

    at = START
    previous = None
    for _ in range(12):
        choice = next_item_choose(course=course, learner=learner, now=at)
        assert choice.item is not None and choice.item != previous
        model = course_model(course)
        state = learner_state(learner=learner, model=model)
        mastery = model.estimator.mastery_at(state, at.timestamp())
        # The reason reports the model's own numbers.
        assert choice.mastery == pytest.approx(mastery[model.skill_index[choice.skill]])
        predicted = model.estimator.predict_next(state, [model.item_index[choice.item]], at=at.timestamp())
        assert choice.p_correct == pytest.approx(float(predicted[0]))
        # The expected gain is the one-step look-ahead, one update per outcome.
        index, moment = model.item_index[choice.item], at.timestamp()
        right, wrong = (model.estimator.update(state, item=index, correct=c, at=moment).mastery for c in (1.0, 0.0))
        columns = np.flatnonzero(model.vocabulary.q_matrix[model.vocabulary.item_ids.index(choice.item)])
        columns = [model.skill_index[model.vocabulary.skill_ids[c]] for c in columns]
        look_ahead = choice.p_correct * right[columns] + (1 - choice.p_correct) * wrong[columns] - mastery[columns]
        assert choice.expected_gain == pytest.approx(float(np.sum(look_ahead)), abs=1e-12)
        graph = graph_for_course(course=course)
        assert all(mastery[model.skill_index[parent]] >= 0.95 for parent in graph.parents(choice.skill))
        answer(course, "u1", choice.item, 1.0, at)
        previous, at = choice.item, at + timedelta(minutes=1)


@pytest.mark.django_db
def test_next_item_is_done_when_every_goal_is_mastered(course):
    curriculum_import(course=course, document=DOCUMENT)
    course.policy = {"threshold": 0.8, "goals": ["add"]}
    course.save()
    learner = Learner.objects.create(course=course, external_id="u2")
    at = START
    for _ in range(12):
        for item in ("count-0", "count-1", "add-0", "add-1"):
            answer(course, "u2", item, 1.0, at)
            at += timedelta(minutes=1)
    choice = next_item_choose(course=course, learner=learner, now=at)
    assert choice.done and choice.item is None and choice.goals_total == 1 and choice.goals_mastered == 1


@pytest.mark.django_db
def test_import_command(tmp_path, capsys):
    path = tmp_path / "course.json"
    path.write_text(json.dumps(DOCUMENT))
    call_command("import_curriculum", str(path))
    course = Course.objects.get(slug="fractions")
    assert course.name == "Fractions" and counts(course)[:3] == (4, 13, 3)
    call_command("import_curriculum", str(path), "--course", "fractions-b")
    assert counts(Course.objects.get(slug="fractions-b"))[:3] == (4, 13, 3)
    out = capsys.readouterr().out
    assert "course fractions (created)" in out and "13 created" in out

    bad = copy.deepcopy(DOCUMENT)
    bad["course"]["id"] = "other"
    bad["prerequisites"].append({"from": "frac-add", "to": "add"})
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="cycle: add -> frac-equiv -> frac-add -> add"):
        call_command("import_curriculum", str(path))
    assert not Course.objects.filter(slug="other").exists()
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_curriculum", str(path))


def small_course_document() -> dict:
    """Six skills (a tree with a join), five items each: small enough to tutor through the services in seconds."""
    skills = ["s0", "s1", "s2", "s3", "s4", "s5"]
    edges = [("s0", "s1"), ("s0", "s2"), ("s1", "s3"), ("s2", "s3"), ("s3", "s4"), ("s2", "s5")]
    return {
        "course": {"id": "small", "name": "Small"},
        "skills": [{"id": skill} for skill in skills],
        "items": [
            {"id": f"{skill}-{n}", "skills": [skill], "answer": "1", "difficulty": 2}
            for skill in skills
            for n in range(5)
        ],
        "prerequisites": [{"from": source, "to": target} for source, target in edges],
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_policy_ordering_on_a_small_simulated_cohort():
    from bench.policy import cohort_run, course_prepare
    from curriculum.simulation import SimulatedCourse

    document = small_course_document()
    simulated = SimulatedCourse.from_document(document, seed=0)
    course = course_prepare(
        document=document,
        slug="small",
        model="bkt",
        params={"restarts": 1, "max_iter": 30},
        pilot=60,
        pilot_items=40,
        simulated=simulated,
    )
    seeds = list(range(12))
    result = cohort_run(
        course=course,
        simulated=simulated,
        arms=["random", "fixed", "ours"],
        settings={"ours": {}},
        seeds=seeds,
        max_items=150,
        posttest_at=20,
    )

    def mean_items(arm):
        return np.mean(
            [o["items_to_mastery"] if o["items_to_mastery"] is not None else 150 for o in result[arm]["outcomes"]]
        )

    def posttest(arm):
        return np.mean([o["posttest"] for o in result[arm]["outcomes"]])

    assert mean_items("ours") < mean_items("fixed") < mean_items("random")
    assert posttest("ours") >= posttest("fixed")
    assert sum(o["reasons"].get("frontier", 0) for o in result["ours"]["outcomes"]) > 0


class _FirstItemPolicy:
    """A policy a plug-in author might write: always the course's first item, for a reason of its own."""

    kind = "first-item"

    def candidates(self, **inputs):
        return {}

    def choose(self, *, items, **inputs):
        from curriculum.policies.base import Choice

        return Choice(item=items[0].id, skill=items[0].skills[0], why="first-item")

    def reviews(self, **inputs):
        return []


def test_a_course_picks_its_policy_by_kind_from_the_registry(course, monkeypatch):
    """Policies are pluggable like estimators: a dotted path in the registry, chosen by the course's
    ``kind``; an unknown kind is refused when the settings are read."""
    from curriculum import policies
    from curriculum.policies.base import PolicyConfig
    from curriculum.policies.frontier import FrontierPolicy

    assert isinstance(policies.get_policy("frontier"), FrontierPolicy)
    with pytest.raises(ValueError, match="unknown policy kind 'nope'"):
        PolicyConfig.from_json({"kind": "nope"})
    monkeypatch.setitem(policies.POLICIES, "first-item", f"{__name__}._FirstItemPolicy")
    curriculum_import(course=course, document={**DOCUMENT, "policy": {"kind": "first-item"}})
    course.refresh_from_db()
    choice = next_item_choose(course=course, learner=Learner(course=course, external_id="new"), now=START)
    assert (choice.item, choice.why) == ("count-0", "first-item")
    course.policy = {"kind": "frontier"}
    course.save()
    assert (
        next_item_choose(course=course, learner=Learner(course=course, external_id="new"), now=START).why == "frontier"
    )
