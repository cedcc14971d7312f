"""Fixtures for the web pages: the demo course, simulated answers, a learner and a staff account."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "curriculum" / "demo" / "arithmetic.json"
PASSWORD = "correct horse battery"


def demo_course_create():
    """The demo arithmetic course, imported through the curriculum service like the management command does."""
    from curriculum.services import course_from_document, curriculum_import

    document = json.loads(DEMO.read_text(encoding="utf-8"))
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    course.open_to_all = True  # as demo_setup leaves it: any signed-in user may practise it
    course.save(update_fields=["open_to_all"])
    return course


def answers_simulate(
    course, *, learners: int = 12, answers: int = 24, seed: int = 0, start: datetime | None = None
) -> int:
    """Simulated learners who learn as they practise, stored through answers_record; returns the count.

    Each learner works through the skills in prerequisite order; a known skill
    is answered right with P 0.85, an unknown one with P 0.25, and each answer
    teaches the skill with P 0.3, so learning curves fall and a fit has signal.
    """
    from curriculum.models import Item
    from tutor.actions import answers_record
    from tutor.web.dashboard import skills_in_order

    generator = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(days=14)
    items_by_skill: dict[str, list[str]] = {}
    for item in Item.objects.filter(course=course).prefetch_related("skills").order_by("id"):
        first = item.skills.all()[0].external_id
        items_by_skill.setdefault(first, []).append(item.external_id)
    order = [skill.external_id for skill in skills_in_order(course=course) if skill.external_id in items_by_skill]
    stored = 0
    for number in range(learners):
        known: set[str] = set()
        position = 0
        rows = []
        moment = start + timedelta(days=generator.random() * 10, hours=number)
        for step in range(answers):
            skill = order[min(position, len(order) - 1)]
            right = generator.random() < (0.85 if skill in known else 0.25)
            if generator.random() < 0.3:
                known.add(skill)
            rows.append(
                {
                    "id": f"sim-{seed}-{number}-{step}",
                    "learner": f"sim-{number:02d}",
                    "item": generator.choice(items_by_skill[skill]),
                    "correct": int(right),
                    "timestamp": moment.isoformat(),
                }
            )
            moment += timedelta(minutes=3 + generator.random() * 60)
            if skill in known and right:
                position += 1
        stored += answers_record(course=course, rows=rows).created_count
    return stored


@pytest.fixture
def demo_course(db):
    return demo_course_create()


@pytest.fixture
def fast_passwords(settings):
    # The default hasher spends most of a second per password on purpose; tests need no such strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def learner_user(db, django_user_model, fast_passwords):
    return django_user_model.objects.create_user(username="ada", password=PASSWORD)


@pytest.fixture
def staff_user(db, django_user_model, fast_passwords):
    return django_user_model.objects.create_user(username="grace", password=PASSWORD, is_staff=True)


@pytest.fixture
def isolated_models(settings, tmp_path):
    """Fit artifacts go to a temporary folder, and no model loaded by an earlier test (whose primary keys a
    rolled-back database may reuse) is served from the per-process cache."""
    from tracing import services

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    services._cache.clear()
    yield
    services._cache.clear()


@pytest.fixture
def learner_client(client, learner_user):
    client.force_login(learner_user)
    return client
