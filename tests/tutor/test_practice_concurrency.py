"""A new learner's first requests at once on PostgreSQL: reads of the prior while the first answers arrive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tutor.models import Interaction, Learner

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_first_item_reads_and_first_answers_at_once(postgresql):
    course = course_with_curriculum("together")
    key = key_for(course)
    base = "/api/v1/courses/together"

    def read(number: int) -> tuple[int, int]:
        try:
            client = client_for(key)
            first = client.get(f"{base}/learners/newbie/next")
            predicted = client.post(f"{base}/predict", {"learner": "newbie", "items": ["q1", "q2"]}, format="json")
            return first.status_code, predicted.status_code
        finally:
            connections.close_all()

    def answer(number: int) -> int:
        try:
            row = {
                "id": f"first-{number}",
                "learner": "newbie",
                "item": "q1",
                "correct": number % 2,
                "timestamp": (START + timedelta(seconds=number)).isoformat(),
            }
            return client_for(key).post(f"{base}/interactions", row, format="json").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        reads = [pool.submit(read, number) for number in range(12)]
        writes = [pool.submit(answer, number) for number in range(6)]
        read_codes = [future.result() for future in reads]
        write_codes = [future.result() for future in writes]
    assert set(read_codes) == {(200, 200)} and set(write_codes) == {201}
    assert Learner.objects.filter(course=course, external_id="newbie").count() == 1
    assert Interaction.objects.filter(course=course, learner__external_id="newbie").count() == 6
