"""The per-process course model cache and the batched mastery update: fast, and never stale or different."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from curriculum.models import Item, Prerequisite, Skill
from curriculum.services import course_from_document, curriculum_import
from tracing.models import Fit, LearnerTrace, Mastery
from tracing.practice import policy_graph
from tracing.services import _replay, course_model, fit_create
from tutor.actions import answers_record
from tutor.demo import demo_document, demo_history_simulate
from tutor.models import Learner

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.ARTIFACT_ROOT = tmp_path
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    demo_history_simulate(course=course, document=document, learners=12, answers=20)
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_create(course=course, kind="bkt", params={"restarts": 1, "max_iter": 20})
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error
    return course


def test_a_warm_model_costs_one_query(demo, django_assert_num_queries):
    # The tests' settings read the signature on every call (TRACING_MODEL_RECHECK = 0, tests/conftest.py).
    first = course_model(demo)
    with django_assert_num_queries(1):
        again = course_model(demo)
    assert again is first and again.fit is not None


def test_a_new_item_skill_or_fit_is_seen_at_once(demo, django_capture_on_commit_callbacks):
    before = course_model(demo)
    skill = Skill.objects.create(course=demo, external_id="brand-new-skill", name="New")
    item = Item.objects.create(course=demo, external_id="brand-new-item")
    assert course_model(demo).vocabulary.skill_ids[-1] == "brand-new-skill"
    item.skills.add(skill)
    model = course_model(demo)
    assert "brand-new-item" in model.vocabulary.item_ids
    row = model.vocabulary.item_ids.index("brand-new-item")
    assert model.vocabulary.q_matrix[row, model.vocabulary.skill_ids.index("brand-new-skill")]
    item.skills.remove(skill)
    assert not course_model(demo).vocabulary.q_matrix[row].any()
    with django_capture_on_commit_callbacks(execute=True):
        fit_create(course=demo, kind="bkt", params={"restarts": 1, "max_iter": 20})
    assert course_model(demo).fit.pk != before.fit.pk


def test_a_signature_is_reused_for_the_recheck_time_and_a_fit_here_is_seen_at_once(
    demo, settings, monkeypatch, django_assert_num_queries, django_capture_on_commit_callbacks
):
    settings.TRACING_MODEL_RECHECK = 1.0
    clock = [5000.0]
    monkeypatch.setattr("core.recheck.time.monotonic", lambda: clock[0])
    first = course_model(demo)
    with django_assert_num_queries(0):  # within the recheck time: no query at all
        assert course_model(demo) is first
    Skill.objects.create(course=demo, external_id="made-elsewhere", name="New")  # as another process would
    clock[0] += 0.9
    assert "made-elsewhere" not in course_model(demo).vocabulary.skill_ids  # at most 1 s behind
    clock[0] += 0.2
    assert course_model(demo).vocabulary.skill_ids[-1] == "made-elsewhere"
    with django_capture_on_commit_callbacks(execute=True):
        fit_create(course=demo, kind="bkt", params={"restarts": 1, "max_iter": 20})
    assert course_model(demo).fit == Fit.objects.get(course=demo, active=True)  # fitted here: seen at once


def test_the_policy_graph_follows_every_edge_change(demo):
    first = policy_graph(course=demo, model=course_model(demo))
    assert policy_graph(course=demo, model=course_model(demo)) is first  # built once per model
    source, target = Skill.objects.filter(course=demo).order_by("-id")[:2]
    assert first.edge(source.external_id, target.external_id) is None
    edge = Prerequisite.objects.create(
        course=demo, source=source, target=target, origin=Prerequisite.LEARNED, weight=0.4
    )
    assert policy_graph(course=demo, model=course_model(demo)).edge(source.external_id, target.external_id) is None
    Prerequisite.objects.filter(pk=edge.pk).update(weight=0.9)  # a refit re-weighs its edge in place
    graph = policy_graph(course=demo, model=course_model(demo))
    assert graph.edge(source.external_id, target.external_id).weight == 0.9
    edge.delete()
    assert policy_graph(course=demo, model=course_model(demo)).edge(source.external_id, target.external_id) is None


def test_an_items_difficulty_changed_in_place_is_seen_at_once(demo):
    """A curriculum re-import updates an item's difficulty in place; the policy's view of the items
    (which questions count as harder evidence) must follow, as it follows an edge's weight."""
    from tracing.practice import policy_items

    def difficulty_of(external_id: str):
        items, _, _ = policy_items(model=course_model(demo), course=demo)
        return next(item.difficulty for item in items if item.id == external_id)

    item = Item.objects.filter(course=demo).order_by("id").first()
    before = difficulty_of(item.external_id)
    Item.objects.filter(pk=item.pk).update(difficulty=(before or 0) + 3)
    assert difficulty_of(item.external_id) == (before or 0) + 3


def test_a_batch_update_equals_a_replay_of_each_history(demo):
    items = list(Item.objects.filter(course=demo).order_by("id").values_list("external_id", flat=True))[:30]
    old = list(Learner.objects.filter(course=demo).order_by("id")[:3])
    rows = []
    for number in range(60):
        learner = old[number % 3].external_id if number % 2 else f"fresh-{number % 4}"
        rows.append(
            {
                "id": f"cache-{number}",
                "learner": learner,
                "item": items[number % len(items)],
                "correct": (number * 7) % 3 != 0,
                "timestamp": (START + timedelta(minutes=number)).isoformat(),
            }
        )
    # One late answer for an old learner: that learner is replayed, the others updated from their traces.
    rows.append(
        {
            "id": "cache-late",
            "learner": old[0].external_id,
            "item": items[0],
            "correct": 1,
            "timestamp": "2020-01-01T00:00:00Z",
        }
    )
    result = answers_record(course=demo, rows=rows)
    model = course_model(demo)
    skills = model.vocabulary.skill_ids
    for learner in Learner.objects.filter(course=demo, external_id__in=result.mastery):
        expected = _replay(model, learner).mastery
        reported = np.array([result.mastery[learner.external_id][skill] for skill in skills])
        np.testing.assert_allclose(reported, np.round(expected, 6), atol=1e-6)
        stored = dict(Mastery.objects.filter(learner=learner).values_list("skill__external_id", "probability"))
        assert len(stored) == len(skills)
        np.testing.assert_allclose([stored[skill] for skill in skills], expected, atol=1e-12)
        trace = LearnerTrace.objects.get(learner=learner, fit=model.fit)
        np.testing.assert_allclose(trace.state["mastery"], expected, atol=1e-12)
