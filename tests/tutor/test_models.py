import pytest
from django.db import IntegrityError, transaction

from curriculum.models import Course, Item, Prerequisite, Skill
from tutor.models import Interaction, Learner

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course = Course.objects.create(slug="c1", name="C1")
    skill = Skill.objects.create(course=course, external_id="s1")
    item = Item.objects.create(course=course, external_id="i1")
    item.skills.add(skill)
    return course


def test_learner_external_id_is_unique_per_course(course):
    Learner.objects.create(course=course, external_id="u1")
    other = Course.objects.create(slug="c2", name="C2")
    Learner.objects.create(course=other, external_id="u1")  # same id, other course: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Learner.objects.create(course=course, external_id="u1")


def test_client_id_is_unique_per_course_and_correct_is_bounded(course):
    learner = Learner.objects.create(course=course, external_id="u1")
    item = Item.objects.get(external_id="i1")
    from django.utils import timezone

    Interaction.objects.create(
        course=course, learner=learner, item=item, correct=1, timestamp=timezone.now(), client_id="x"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Interaction.objects.create(
            course=course, learner=learner, item=item, correct=0, timestamp=timezone.now(), client_id="x"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Interaction.objects.create(course=course, learner=learner, item=item, correct=1.5, timestamp=timezone.now())


def test_prerequisite_self_loop_is_refused(course):
    skill = Skill.objects.get(external_id="s1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Prerequisite.objects.create(course=course, source=skill, target=skill)


def test_only_one_active_fit_per_course(course):
    from tracing.models import Fit

    Fit.objects.create(course=course, kind="rate", active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Fit.objects.create(course=course, kind="rate", active=True)
