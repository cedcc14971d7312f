"""The plain-SQL reads of the answer and next-item paths give what the ORM gives, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Max

from core import sql
from core.errors import NotFound
from curriculum import selectors as curriculum_selectors
from curriculum.models import Course, Item, Skill
from tracing.models import Mastery
from tutor import hot_queries
from tutor.models import Interaction, Learner
from tutor.services import learner_get

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def course():
    course = Course.objects.create(slug="hot", name="Hot")
    Item.objects.create(course=course, external_id="mc", body="2 + 2?", choices=["3", "4"], answer_format="")
    Item.objects.create(course=course, external_id="typed", body="5 - 1?", choices=None, answer_format="simplest")
    learner = Learner.objects.create(course=course, external_id="ada")
    items = list(Item.objects.filter(course=course).order_by("id"))
    Interaction.objects.bulk_create(
        [
            Interaction(
                course=course,
                learner=learner,
                item=items[n % 2],
                correct=(n % 3) / 2,
                timestamp=START + timedelta(minutes=(7 * n) % 11, microseconds=n),
                client_id=f"c{n}",
            )
            for n in range(11)
        ]
    )
    return course


def test_reads_match_the_orm(course):
    learner = Learner.objects.get(course=course)
    orm_recent = list(
        Interaction.objects.filter(learner=learner).order_by("-timestamp", "-id").values_list("item_id", "correct")[:4]
    )
    recent, record = hot_queries.learner_exposure(learner_pk=learner.pk, limit=4)
    last = {item: answered for item, (_, answered, _) in record.items()}
    assert recent == [(item, float(correct)) for item, correct in reversed(orm_recent)]
    orm_last = dict(
        Interaction.objects.filter(learner=learner)
        .order_by()
        .values_list("item_id")
        .annotate(last=Max("timestamp"))
        .values_list("item_id", "last")
    )
    assert last == {item: moment.timestamp() for item, moment in orm_last.items()}  # exactly: same float
    everything, _ = hot_queries.learner_exposure(learner_pk=learner.pk, limit=100)
    assert len(everything) == 11 and everything[-4:] == recent
    assert hot_queries.learner_exposure(learner_pk=learner.pk + 1000, limit=4) == ([], {})
    wanted = ["c3", "c9", "nope"]
    assert hot_queries.stored_client_ids(course_pk=course.pk, client_ids=wanted) == dict(
        Interaction.objects.filter(course=course, client_id__in=wanted).values_list("client_id", "id")
    )
    assert hot_queries.learner_pks(course_pk=course.pk, external_ids=["ada", "bob"]) == {"ada": learner.pk}
    found = learner_get(course=course, external_id="ada")
    assert found == learner and found.course is course
    assert (found.external_id, found.user_id, found.created_at) == (learner.external_id, None, learner.created_at)
    with pytest.raises(NotFound):
        learner_get(course=course, external_id="nobody")


def test_item_shown_decodes_choices_and_hides_the_answer(course):
    assert curriculum_selectors.item_shown(course_pk=course.pk, external_id="mc") == {
        "body": "2 + 2?",
        "choices": ["3", "4"],
        "answer_format": "",
    }
    assert curriculum_selectors.item_shown(course_pk=course.pk, external_id="typed")["choices"] is None
    assert curriculum_selectors.item_shown(course_pk=course.pk, external_id="missing") is None


def test_lookups_split_long_lists_into_chunks(course, monkeypatch):
    monkeypatch.setattr(hot_queries, "CHUNK", 3)
    names = [f"x{n}" for n in range(7)] + ["ada"]
    assert hot_queries.learner_pks(course_pk=course.pk, external_ids=names) == {
        "ada": Learner.objects.get(course=course).pk
    }
    ids = [f"c{n}" for n in range(11)]
    assert set(hot_queries.stored_client_ids(course_pk=course.pk, client_ids=ids)) == set(ids)


def test_upsert_inserts_then_updates_in_place(course, monkeypatch):
    monkeypatch.setattr(hot_queries, "CHUNK", 10)  # two rows of 5 columns per statement
    learner = Learner.objects.get(course=course)
    skills = [Skill.objects.create(course=course, external_id=f"s{n}") for n in range(3)]
    columns = ["learner_id", "skill_id", "probability", "updated_at", "fit_id"]

    def write(probability: float, moment: datetime) -> None:
        sql.upsert(
            table=Mastery._meta.db_table,
            columns=columns,
            rows=[
                (learner.pk, skill.pk, probability + n, sql.db_datetime(moment), None) for n, skill in enumerate(skills)
            ],
            conflict=["learner_id", "skill_id"],
            update=["probability", "updated_at"],
        )

    write(0.1, START)
    write(0.2, START + timedelta(hours=1))
    stored = list(Mastery.objects.filter(learner=learner).order_by("skill_id").values_list("probability", "updated_at"))
    assert stored == [(pytest.approx(0.2 + n), START + timedelta(hours=1)) for n in range(3)]


def test_exposure_matches_the_orm(course):
    from django.db.models import Count, Q

    learner = Learner.objects.get(course=course)
    recent, record = hot_queries.learner_exposure(learner_pk=learner.pk, limit=4)
    orm = (
        Interaction.objects.filter(learner=learner)
        .order_by()
        .values("item_id")
        .annotate(answers=Count("id"), last=Max("timestamp"), wrong=Max("timestamp", filter=Q(correct__lt=0.5)))
    )
    assert record == {
        row["item_id"]: (row["answers"], row["last"].timestamp(), row["wrong"].timestamp() if row["wrong"] else None)
        for row in orm
    }
    assert hot_queries.learner_exposure(learner_pk=None, limit=4) == ([], {})
