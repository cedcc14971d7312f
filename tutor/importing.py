"""Importing interaction files: parse every line first, then write one file in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone as django_timezone

from curriculum.models import Item, Skill, Course
from tracing.formats import FormatError, Record, read_records
from core.errors import ServiceError
from tutor.services import Row, interactions_import, row_validate
from core.validation import clean_text


def _vocabulary_ensure(course: Course, records: list[Record]) -> tuple[int, int]:
    """Create the skills and items the records name; existing ones are left as they are."""
    item_skills: dict[str, tuple[str, ...]] = {}
    for record in records:
        item_skills.setdefault(record.item, record.skills or (record.item,))
    skill_names = sorted({s for skills in item_skills.values() for s in skills})
    existing_skills = set(Skill.objects.filter(course=course).values_list("external_id", flat=True))
    new_skills = [Skill(course=course, external_id=s, name=s) for s in skill_names if s not in existing_skills]
    Skill.objects.bulk_create(new_skills, batch_size=2000)
    existing_items = set(Item.objects.filter(course=course).values_list("external_id", flat=True))
    new_items = [Item(course=course, external_id=i) for i in item_skills if i not in existing_items]
    Item.objects.bulk_create(new_items, batch_size=2000)
    if new_items:
        skill_pk = dict(Skill.objects.filter(course=course).values_list("external_id", "id"))
        item_pk = dict(Item.objects.filter(course=course, external_id__in=[i.external_id for i in new_items])
                       .values_list("external_id", "id"))
        links = [Item.skills.through(item_id=item_pk[item.external_id], skill_id=skill_pk[s])
                 for item in new_items for s in item_skills[item.external_id]]
        Item.skills.through.objects.bulk_create(links, batch_size=5000, ignore_conflicts=True)
    return len(new_skills), len(new_items)


def _rows(path: Path, records: list[Record]) -> list[Row]:
    """The records as Rows, checked by the same validation as every other way in; a bad value is a
    FormatError naming the file and line."""
    rows: list[Row] = []
    step_on_line: dict[int, int] = {}
    now = django_timezone.now()
    known_skills: set[str] = set()
    for record in records:
        # Files without ids get one from their position, so a re-import finds them again.
        step = step_on_line[record.line] = step_on_line.get(record.line, -1) + 1
        raw = {"learner": record.learner, "item": record.item, "correct": record.correct,
               "timestamp": record.timestamp, "id": record.client_id or f"{path.name}:{record.line}:{step}",
               "response_time": record.response_time}
        try:
            rows.append(row_validate(raw, len(rows), now=now))
        except ServiceError as error:
            raise FormatError(path, record.line, error.message.split(": ", 1)[-1]) from None
        for skill in record.skills:
            if skill not in known_skills:
                try:
                    known_skills.add(clean_text(skill))
                except ValueError as error:
                    raise FormatError(path, record.line, f"skill {error}") from None
    return rows


def file_import(*, course_slug: str, path: Path, format: str, course_name: str = "",
                on_rows: Callable[[int], Any] | None = None) -> tuple[dict[str, int], Course, list[int]]:
    """Import one file into a course, creating the course, skills and items it needs. Returns a
    summary, the course, and the learners (pks) with new answers; their mastery is the caller's
    (``tutor.actions.answers_import``).

    Raises FormatError (file, line, reason) before anything is written: the file's syntax, and every
    value checked as the API checks it (a timestamp outside the accepted range, say).
    """
    records = list(read_records(path, format))
    rows = _rows(path, records)
    with transaction.atomic():
        course, created = Course.objects.get_or_create(slug=course_slug, defaults={"name": course_name or course_slug})
        if created and records and not records[0].timed:
            course.has_clock = False
            course.save(update_fields=["has_clock"])
        skills_created, items_created = _vocabulary_ensure(course, records)
        result = interactions_import(course=course, rows=rows, on_batch=on_rows)
    summary = {"created": result.created_count, "duplicates": result.duplicate_count,
               "learners_created": result.learners_created, "items_created": items_created,
               "skills_created": skills_created, "rows": len(records)}
    return summary, course, sorted(result.learners.values())
