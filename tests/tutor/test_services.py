import pytest

from core.errors import ServiceError
from curriculum.models import Course, Item, Skill
from tutor.actions import answers_record
from tutor.models import Interaction, Learner

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course = Course.objects.create(slug="arith", name="Arithmetic")
    for skill_id in ("add", "sub"):
        skill = Skill.objects.create(course=course, external_id=skill_id)
        for n in range(3):
            Item.objects.create(course=course, external_id=f"{skill_id}-{n}").skills.add(skill)
    return course


def rows(*specs):
    return [
        {"id": f"c{n}", "learner": learner, "item": item, "correct": correct, "timestamp": f"2026-11-25T10:00:{n:02d}Z"}
        for n, (learner, item, correct) in enumerate(specs)
    ]


def test_records_creates_learners_and_returns_mastery(course):
    result = answers_record(course=course, rows=rows(("u1", "add-0", 1), ("u2", "sub-1", 0)))
    assert len(result.created) == 2 and result.learners_created == 2
    assert set(result.mastery) == {"u1", "u2"}
    assert set(result.mastery["u1"]) == {"add", "sub"}
    assert Learner.objects.filter(course=course).count() == 2


def test_a_correct_answer_raises_mastery_of_its_skill(course):
    first = answers_record(course=course, rows=rows(("u1", "add-0", 0)))
    second = answers_record(
        course=course, rows=[{**rows(("u1", "add-1", 1))[0], "id": "later", "timestamp": "2026-11-25T11:00:00Z"}]
    )
    assert second.mastery["u1"]["add"] > first.mastery["u1"]["add"]
    assert second.mastery["u1"]["sub"] == pytest.approx(first.mastery["u1"]["sub"])


def test_retry_is_idempotent(course):
    batch = rows(("u1", "add-0", 1), ("u1", "add-1", 0))
    first = answers_record(course=course, rows=batch)
    again = answers_record(course=course, rows=batch)
    assert len(again.created) == 0 and [i.pk for i in again.duplicates] == [i.pk for i in first.created]
    assert Interaction.objects.count() == 2


def test_unknown_item_rejects_the_whole_batch(course):
    with pytest.raises(ServiceError) as error:
        answers_record(course=course, rows=rows(("u1", "add-0", 1), ("u1", "nope", 1)))
    assert error.value.code == "unknown_item" and "'nope'" in error.value.message
    assert Interaction.objects.count() == 0 and Learner.objects.count() == 0


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("correct", 2, "invalid_correct"),
        ("correct", "yes", "invalid_correct"),
        ("timestamp", "soon", "invalid_timestamp"),
        ("learner", "", "required"),
        ("response_time", -1, "invalid_response_time"),
    ],
)
def test_bad_rows_name_row_and_field(course, field, value, code):
    batch = rows(("u1", "add-0", 1), ("u1", "add-1", 1))
    batch[1][field] = value
    with pytest.raises(ServiceError) as error:
        answers_record(course=course, rows=batch)
    assert error.value.code == code and error.value.index == 1 and error.value.field == field
    assert Interaction.objects.count() == 0


def test_same_id_twice_with_different_content_is_refused(course):
    batch = rows(("u1", "add-0", 1), ("u1", "add-1", 0))
    batch[1]["id"] = batch[0]["id"]
    with pytest.raises(ServiceError, match="appears twice"):
        answers_record(course=course, rows=batch)


def test_batch_limit(course):
    with pytest.raises(ServiceError) as error:
        answers_record(course=course, rows=[{}] * 3, limit=2)
    assert error.value.code == "batch_too_large"


def test_late_answer_is_replayed_in_time_order(course):
    answers_record(
        course=course, rows=[{"learner": "u1", "item": "add-0", "correct": 1, "timestamp": "2026-11-25T12:00:00Z"}]
    )
    late = answers_record(
        course=course, rows=[{"learner": "u1", "item": "add-1", "correct": 0, "timestamp": "2026-11-25T09:00:00Z"}]
    )
    from tracing.services import course_model, learner_state

    learner = Learner.objects.get(external_id="u1")
    model = course_model(course)
    replayed = learner_state(learner=learner, model=model)
    assert late.mastery["u1"]["add"] == pytest.approx(float(replayed.mastery[model.skill_index["add"]]), abs=1e-6)
