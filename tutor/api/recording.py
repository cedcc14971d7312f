"""Record a validated batch and describe the outcome row by row (shared by interactions and xAPI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tutor.api.selectors import stored_mastery
from curriculum.models import Course
from tutor.services import RecordResult, Row, interaction_record


@dataclass
class BatchOutcome:
    """``results[i]`` describes row i: status created|duplicate and the stored interaction's number."""

    result: RecordResult
    results: list[dict[str, Any]]
    mastery: dict[str, dict[str, float]]

    @property
    def any_created(self) -> bool:
        return self.result.created_count > 0


def batch_record(*, course: Course, rows: Sequence[Row]) -> BatchOutcome:
    """interaction_record, then each row's fate in input order and the learners' mastery now.

    A row whose client id was stored before, or appeared earlier in this batch,
    is a duplicate pointing at the stored interaction. Learners with new answers
    get the mastery the update produced; learners whose rows were all duplicates
    get their stored mastery, so a retried batch answers as the first attempt did.
    """
    result = interaction_record(course=course, rows=rows)
    created = iter(result.created)
    next_duplicate = 0  # duplicates come back in input order, one per row whose id was stored before
    stored_by_id: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if (row.client_id is not None and next_duplicate < len(result.duplicates)
                and result.duplicates[next_duplicate].client_id == row.client_id):
            status, number = "duplicate", result.duplicates[next_duplicate].pk
            next_duplicate += 1
        elif row.client_id is not None and row.client_id in stored_by_id:
            status, number = "duplicate", stored_by_id[row.client_id]  # repeated within this batch
        else:
            status, number = "created", next(created).pk
        if row.client_id is not None:
            stored_by_id.setdefault(row.client_id, number)
        results.append({"index": index, "id": row.client_id, "status": status, "interaction": number,
                        "learner": row.learner, "item": row.item})
    mastery = dict(result.mastery)
    missing = {row.learner for row in rows} - set(mastery)
    if missing:
        mastery.update(stored_mastery(course=course, learners=missing))
    return BatchOutcome(result=result, results=results, mastery=mastery)

