"""Answers recorded for a learner while they are being erased: each lands before the erasure (and is
erased with the rest) or after it (under a new learner of that id, whose mastery is a replay of those
answers alone); no row is left pointing at the erased learner. Threads need their own connections, so
this runs on PostgreSQL only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from tests.threads import THREADS, together
from tests.tutor.test_concurrency import ITEMS, START, assert_matches_replay, fitted_course  # noqa: F401
from tracing.models import LearnerTrace, Mastery
from tutor.actions import answers_record
from tutor.models import Erasure, Interaction, Learner
from tutor.privacy import learner_erase

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 4
PER_THREAD = 3


def orphans() -> int:
    """Rows whose learner no longer exists, read past the ORM (the foreign keys are what is tested)."""
    with connection.cursor() as cursor:
        total = 0
        for model in (Interaction, Mastery, LearnerTrace):
            cursor.execute(
                f"SELECT COUNT(*) FROM {model._meta.db_table} AS row LEFT JOIN {Learner._meta.db_table} "
                f"AS learner ON learner.id = row.learner_id WHERE learner.id IS NULL"
            )
            total += cursor.fetchone()[0]
    return total


def test_answers_during_an_erasure_leave_no_orphans_and_none_is_lost(fitted_course):  # noqa: F811
    course = fitted_course
    for round_ in range(ROUNDS):
        name = f"target-{round_}"
        answers_record(
            course=course,
            rows=[
                {
                    "id": f"{name}-before-{step}",
                    "learner": name,
                    "item": ITEMS[step % 4],
                    "correct": step % 2,
                    "timestamp": (START + timedelta(minutes=step)).isoformat(),
                }
                for step in range(10)
            ],
        )
        erased_pk = Learner.objects.get(course=course, external_id=name).pk

        def work(number: int) -> None:
            if number == round_ % THREADS:
                learner_erase(course=course, external_id=name, confirm=name)
                return
            answers_record(
                course=course,
                rows=[
                    {
                        "id": f"{name}-during-{number}-{step}",
                        "learner": name,
                        "item": ITEMS[(number + step) % 4],
                        "correct": (number + step) % 2,
                        "timestamp": (START + timedelta(hours=1, minutes=number * 5 + step)).isoformat(),
                    }
                    for step in range(PER_THREAD)
                ],
            )

        together(work)

        erasure = Erasure.objects.get(course=course, learner_number=erased_pk)
        assert orphans() == 0
        for model in (Interaction, Mastery, LearnerTrace):
            assert not model.objects.filter(learner_id=erased_pk).exists(), model
        survivor = Learner.objects.filter(course=course, external_id=name).first()
        after = Interaction.objects.filter(learner=survivor).count() if survivor else 0
        # Every answer was either erased or is held by the learner made after the erasure: none lost, none twice.
        assert erasure.counts["tutor.Interaction"] + after == 10 + (THREADS - 1) * PER_THREAD
        assert erasure.counts["tutor.Interaction"] >= 10
        if survivor is not None:
            assert survivor.pk != erased_pk
            assert not Interaction.objects.filter(learner=survivor, client_id__contains="-before-").exists()
            assert_matches_replay(course, name, after)
