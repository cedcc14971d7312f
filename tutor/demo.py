"""The demo course: the arithmetic curriculum, demo accounts and a simulated class history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from curriculum.models import Course
from curriculum.services import course_from_document, curriculum_import
from curriculum.simulation import SimulatedCourse, SimulatedLearner, topological_order
from tracing.estimators import ESTIMATORS
from tutor.actions import fit_start
from tutor.models import Interaction
from tutor.services import Row, interactions_import

DEMO_DOCUMENT = Path(__file__).resolve().parent.parent / "curriculum" / "demo" / "arithmetic.json"


def demo_document() -> dict[str, Any]:
    return json.loads(DEMO_DOCUMENT.read_text(encoding="utf-8"))


def demo_users_ensure(*, password: str = "demo") -> list[str]:
    """A staff account ``admin`` and a learner account ``learner``, both with ``password``; only if absent."""
    users = get_user_model()
    made = []
    if not users.objects.filter(username="admin").exists():
        users.objects.create_superuser("admin", "admin@example.org", password)
        made.append("admin")
    if not users.objects.filter(username="learner").exists():
        users.objects.create_user("learner", "learner@example.org", password)
        made.append("learner")
    return made


def demo_history_simulate(
    *, course: Course, document: dict[str, Any], learners: int = 60, answers: int = 40, seed: int = 0
) -> int:
    """Simulated classmates (``sim-NN``) who worked through the course in textbook order, with
    some items skipped at random, so the dashboard and the first fit have data. Idempotent."""
    if Interaction.objects.filter(course=course, learner__external_id__startswith="sim-").exists():
        return 0
    simulated = SimulatedCourse.from_document(document, seed=seed)
    order = topological_order(simulated)
    start = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for number in range(learners):
        learner = SimulatedLearner(simulated, seed=seed * 1000 + number)
        sequence = [item for item in order if rng.random() < 0.5][:answers]
        for step, item in enumerate(sequence):
            correct, moment = learner.answer(item)
            rows.append(
                Row(
                    learner=f"sim-{number:02d}",
                    item=simulated.item_ids[item],
                    correct=correct,
                    timestamp=start + timedelta(days=number % 7, seconds=moment),
                    client_id=f"demo-sim-{number:02d}-{step:03d}",
                )
            )
    return interactions_import(course=course, rows=rows).created_count


def demo_setup(*, simulate: bool = True, fit: bool = True) -> dict[str, Any]:
    """Load the demo course, its history and a first BKT fit; demo accounts only with DEBUG on.

    Safe to run again: nothing is duplicated.
    """
    document = demo_document()
    with transaction.atomic():
        course, created = course_from_document(document=document)
        summary = curriculum_import(course=course, document=document)
        if not course.open_to_all:  # anyone signed in may try the demo; other courses need an enrolment
            course.open_to_all = True
            course.save(update_fields=["open_to_all"])
    result: dict[str, Any] = {
        "course": course.slug,
        "course_created": created,
        "curriculum": summary,
        "users_created": demo_users_ensure() if settings.DEBUG else [],
    }
    if simulate:
        result["simulated_interactions"] = demo_history_simulate(course=course, document=document)
    if fit and not course.fits.filter(status="succeeded").exists():
        kind = "bkt" if _has_kind("bkt") else "rate"
        fitted = fit_start(course=course, kind=kind, inline=True)  # a command: no background to wait for
        result["fit"] = {"id": fitted.pk, "kind": kind, "status": fitted.status}
    return result


def _has_kind(kind: str) -> bool:
    return kind in ESTIMATORS
