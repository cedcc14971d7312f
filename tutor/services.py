"""Business logic for courses, learners and interactions: the one way answers get stored."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, overload

from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone

from core.errors import NotFound, ServiceError
from core.sql import CHUNK
from core.validation import clean_number, clean_text, clean_timestamp
from curriculum.models import Course, Item
from tutor.activity import Answered, activity_record
from tutor.hot_queries import learner_pks, learner_row, learners_lock, stored_client_ids
from tutor.models import Interaction, Learner

MAX_BATCH = 10_000
SCAN_ABOVE = 4 * CHUNK  # more client ids than this: scan the course's ids once instead of IN (...) lookups


@dataclass(frozen=True)
class Row:
    """One validated answer, before it is stored."""

    learner: str
    item: str
    correct: float
    timestamp: datetime
    client_id: str | None = None
    response_time: float | None = None
    response: str = ""


@dataclass
class RecordResult:
    """``created`` and ``duplicates`` are in input order; ``mastery`` maps learner -> skill -> P(known).

    ``duplicates`` holds the stored interactions of rows whose id was stored before this batch;
    ``duplicate_count`` counts those and the rows repeating an id earlier in the same batch.
    """

    created: list[Interaction] = field(default_factory=list)
    duplicates: list[Interaction] = field(default_factory=list)
    created_count: int = 0
    duplicate_count: int = 0
    learners_created: int = 0
    learners: dict[str, int] = field(default_factory=dict)
    """External id -> pk of every learner with a new answer."""
    mastery: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    """The batch's rows as validated, in input order."""
    answered: list[Answered] = field(default_factory=list)
    """The stored answers as ``tutor.activity`` sums them."""
    results: list[dict[str, Any]] = field(default_factory=list)
    """Per input row, its fate (``tutor.actions.answers_record`` fills it: status created|duplicate and
    the stored interaction's number)."""


def _learner_from_row(course: Course, external_id: str, row: tuple[int, int | None, datetime]) -> Learner:
    learner = Learner.from_db(
        connection.alias,
        ["id", "course_id", "external_id", "user_id", "created_at"],
        [row[0], course.pk, external_id, row[1], row[2]],
    )
    learner.course = course  # the caller's object: no second query for learner.course
    return learner


def learner_get(*, course: Course, external_id: str) -> Learner:
    row = learner_row(course_pk=course.pk, external_id=external_id)
    if row is None:
        raise NotFound(f"learner {external_id!r} not found in course {course.slug!r}")
    return _learner_from_row(course, external_id, row)


def learner_get_or_new(*, course: Course, external_id: str) -> Learner:
    """The course's learner ``external_id``, or, for one with no answers yet, an unsaved Learner that
    stands for the model's prior (nothing is written: a read must not create learners)."""
    row = learner_row(course_pk=course.pk, external_id=external_id)
    if row is not None:
        return _learner_from_row(course, external_id, row)
    if not 0 < len(external_id) <= 200 or external_id != external_id.strip():
        raise ServiceError(
            "learner must be 1 to 200 characters with no surrounding spaces", code="invalid_length", field="learner"
        )
    return Learner(course=course, external_id=external_id)


def learner_get_or_create(*, course: Course, external_id: str, user: Any = None) -> Learner:
    learner, created = Learner.objects.get_or_create(course=course, external_id=external_id, defaults={"user": user})
    if not created and user is not None and learner.user_id is None:
        learner.user = user
        learner.save(update_fields=["user"])
    return learner


MAX_RESPONSE_TIME = 366 * 86400.0
"""Seconds; a longer response time is a client's bug (milliseconds sent as seconds), not a learner."""
MAX_RESPONSE_LENGTH = 2000


def _row_error(index: int, name: str, reason: str, code: str) -> ServiceError:
    return ServiceError(f"row {index}: {name} {reason}", code=code, field=name, index=index)


@overload
def _text(value: Any, name: str, index: int, *, required: Literal[True] = True, limit: int = 200) -> str: ...
@overload
def _text(value: Any, name: str, index: int, *, required: bool, limit: int = 200) -> str | None: ...
def _text(value: Any, name: str, index: int, *, required: bool = True, limit: int = 200) -> str | None:
    if value is None or value == "":
        if required:
            raise ServiceError(f"row {index}: {name} is required", code="required", field=name, index=index)
        return None
    try:
        return clean_text(value, limit=limit)
    except ValueError as error:
        code = (
            "invalid_type"
            if not isinstance(value, str)
            else (
                "invalid_length"
                if str(error).startswith(("must be at most", "must not be empty"))
                else "invalid_character"
            )
        )
        raise _row_error(index, name, str(error), code) from None


def row_validate(raw: Mapping[str, Any], index: int = 0, *, now: datetime | None = None) -> Row:
    """Check one incoming answer; ServiceError names the row and the field at fault.

    Every way in (REST, xAPI, the web page, the file importer) builds its rows here. Ids
    (learner, item, id) are JSON strings, never numbers; the timestamp must lie in
    ``core.validation.timestamp_bounds`` once converted to UTC.
    """
    if not isinstance(raw, Mapping):
        raise ServiceError(f"row {index}: expected an object", code="invalid_type", index=index)
    correct = raw.get("correct")
    try:
        correct = clean_number(float(correct) if isinstance(correct, bool) else correct, low=0.0, high=1.0)
    except ValueError:
        shown = repr(correct) if isinstance(correct, (bool, float)) or correct is None else _kind_of(correct)
        raise _row_error(
            index, "correct", f"must be 0, 1 or a score in [0, 1], got {shown}", "invalid_correct"
        ) from None
    response_time = raw.get("response_time")
    if response_time is not None:
        try:
            response_time = clean_number(response_time, low=0.0, high=MAX_RESPONSE_TIME)
        except ValueError:
            raise _row_error(
                index,
                "response_time",
                f"must be a number of seconds in [0, {MAX_RESPONSE_TIME:g}]",
                "invalid_response_time",
            ) from None
    response = raw.get("response") or ""
    try:
        if response:  # most rows (every imported one) have none: "" needs no check
            response = clean_text(response, limit=MAX_RESPONSE_LENGTH, strip=False, allow_empty=True)
    except ValueError as error:
        raise _row_error(
            index,
            "response",
            f"must be a string of at most {MAX_RESPONSE_LENGTH} characters ({error})",
            "invalid_response",
        ) from None
    raw_time = raw.get("timestamp")
    if raw_time is None:
        timestamp = now or django_timezone.now()
    else:
        try:
            timestamp = clean_timestamp(raw_time, now=now)
        except ValueError as error:
            raise _row_error(index, "timestamp", str(error), "invalid_timestamp") from None
    return Row(
        learner=_text(raw.get("learner"), "learner", index),
        item=_text(raw.get("item"), "item", index),
        correct=correct,
        timestamp=timestamp,
        client_id=_text(raw.get("id"), "id", index, required=False),
        response_time=response_time,
        response=response,
    )


def _kind_of(value: Any) -> str:
    return "a number out of range" if isinstance(value, int) else f"a {type(value).__name__}"


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _learners_resolve(course: Course, names: set[str]) -> tuple[dict[str, int], int]:
    ordered = sorted(names)
    known = learner_pks(course_pk=course.pk, external_ids=ordered)
    missing = [name for name in ordered if name not in known]
    if missing:
        Learner.objects.bulk_create(
            [Learner(course=course, external_id=name) for name in missing], batch_size=CHUNK, ignore_conflicts=True
        )
        known.update(learner_pks(course_pk=course.pk, external_ids=missing))
    return known, len(missing)


def _items_resolve(course: Course, names: set[str], cached: Mapping[str, int] | None = None) -> dict[str, int]:
    """External id -> pk for these items; ``cached`` (the served model's view of the course) saves the query
    when it knows them all."""
    if cached is not None and all(name in cached for name in names):
        return {name: cached[name] for name in names}
    ordered = sorted(names)
    known: dict[str, int] = {}
    for chunk in _chunks(ordered):
        known.update(
            Item.objects.filter(course=course, external_id__in=chunk).order_by().values_list("external_id", "id")
        )
    missing = [name for name in ordered if name not in known]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ServiceError(
            f"{len(missing)} unknown item(s) in course {course.slug!r}: {shown}",
            code="unknown_item",
            field="item",
            detail={"unknown_items": missing[:100]},
        )
    return known


def interaction_record(
    *,
    course: Course,
    rows: Sequence[Mapping[str, Any] | Row],
    limit: int | None = MAX_BATCH,
    item_pks: Mapping[str, int] | None = None,
    lock_learners: bool = False,
    on_stored: Callable[[RecordResult], None] | None = None,
) -> RecordResult:
    """Store a batch of answers atomically; a client id already stored is a duplicate, not an error.

    Every row is validated before anything is written. Unknown learners are created; an unknown
    item fails the whole batch. Retrying the same batch stores nothing twice and returns the same
    interactions as duplicates. ``on_stored`` runs in the same transaction once the rows are in:
    the action layer's online mastery update (``tutor.actions.answers_record``), which this floor
    does not import. ``item_pks`` (item id -> pk, where the caller has them) saves a query;
    ``lock_learners`` holds the learners' rows from before the insert to the commit, so one
    learner's batches are applied one after another.
    """
    if limit is not None and len(rows) > limit:
        raise ServiceError(f"a batch holds at most {limit} interactions, got {len(rows)}", code="batch_too_large")
    now = django_timezone.now()
    validated = [row if isinstance(row, Row) else row_validate(row, index, now=now) for index, row in enumerate(rows)]
    seen: dict[str, int] = {}
    for index, row in enumerate(validated):
        if row.client_id is None:
            continue
        if row.client_id in seen and validated[seen[row.client_id]] != row:
            raise ServiceError(
                f"row {index}: id {row.client_id!r} appears twice in the batch with different content",
                code="duplicate_id_in_batch",
                field="id",
                index=index,
            )
        seen.setdefault(row.client_id, index)
    for attempt in range(2):
        try:
            with transaction.atomic():
                result = _record(course, validated, item_pks, lock_learners, keep=limit is not None)
                result.rows = validated
                if on_stored is not None and result.created:
                    on_stored(result)
                # Last: the course's item and day sums are shared rows, held from here to the commit.
                activity_record(course_pk=course.pk, answers=result.answered)
                return result
        except IntegrityError:
            # A concurrent request stored one of these client ids between our check and
            # our insert: the whole batch rolled back, and a second pass sees them as duplicates.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _record(
    course: Course, rows: list[Row], item_pks: Mapping[str, int] | None, lock_learners: bool, keep: bool
) -> RecordResult:
    result = RecordResult()
    if not rows:
        return result
    items = _items_resolve(course, {row.item for row in rows}, cached=item_pks)
    client_ids = sorted({row.client_id for row in rows if row.client_id is not None})
    existing: dict[str, int] = {}
    if len(client_ids) > SCAN_ABOVE:
        # A file-sized batch: one scan of the course's ids beats many IN (...) queries.
        wanted = set(client_ids)
        existing.update(
            pair
            for pair in Interaction.objects.filter(course=course, client_id__isnull=False)
            .order_by()
            .values_list("client_id", "id")
            .iterator(chunk_size=20_000)
            if pair[0] in wanted
        )
    else:
        existing.update(stored_client_ids(course_pk=course.pk, client_ids=client_ids))
    fresh: list[Row] = []
    fresh_ids: set[str] = set()
    duplicate_ids: list[int] = []
    for row in rows:
        if row.client_id is not None and row.client_id in existing:
            duplicate_ids.append(existing[row.client_id])
        elif row.client_id is None or row.client_id not in fresh_ids:
            fresh.append(row)
            if row.client_id is not None:
                fresh_ids.add(row.client_id)
    # Rows repeating an id stored before, and rows repeating an id earlier in this batch: both store nothing.
    result.duplicate_count = len(rows) - len(fresh)
    if duplicate_ids and keep:
        # API batches answer with the stored rows; file imports only need the count.
        stored = Interaction.objects.select_related("learner", "item").in_bulk(duplicate_ids)
        result.duplicates = [stored[pk] for pk in duplicate_ids]
    result.learners, result.learners_created = _learners_resolve(course, {row.learner for row in fresh})
    if lock_learners and fresh:
        # Before the answers go in and the learners' states are read: a second request for one of these
        # learners waits here until this one commits, then reads the state this one wrote.
        learners_lock(learner_pks=list(result.learners.values()))
    if not keep and len(fresh) > CHUNK and connection.vendor == "postgresql":
        now = django_timezone.now()
        _copy_insert(course, fresh, result.learners, items, now)
        result.created_count = len(fresh)
        result.answered = [
            (result.learners[row.learner], items[row.item], row.correct, row.timestamp, now) for row in fresh
        ]
    else:
        objects = [
            Interaction(
                course=course,
                learner_id=result.learners[row.learner],
                item_id=items[row.item],
                correct=row.correct,
                timestamp=row.timestamp,
                response_time=row.response_time,
                client_id=row.client_id,
                response=row.response,
            )
            for row in fresh
        ]
        result.created = Interaction.objects.bulk_create(objects, batch_size=CHUNK)
        result.created_count = len(result.created)
        result.answered = [
            (answer.learner_id, answer.item_id, answer.correct, answer.timestamp, answer.created_at)
            for answer in result.created
        ]
    return result


def _copy_insert(
    course: Course, rows: list[Row], learners: dict[str, int], items: dict[str, int], now: datetime
) -> None:
    """PostgreSQL COPY straight from the rows: no model instances, several times faster than INSERT."""
    columns = (
        "course_id",
        "learner_id",
        "item_id",
        "correct",
        "timestamp",
        "response_time",
        "client_id",
        "response",
        "created_at",
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY {Interaction._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    (
                        course.pk,
                        learners[row.learner],
                        items[row.item],
                        row.correct,
                        row.timestamp,
                        row.response_time,
                        row.client_id,
                        row.response,
                        now,
                    )
                )


ProgressBar = Callable[[int], None]


def interactions_import(
    *, course: Course, rows: Iterable[Row], on_batch: ProgressBar | None = None, batch: int = 200_000
) -> RecordResult:
    """Store many answers (a file) in one transaction: all or nothing, duplicates skipped.

    Mastery is not updated per row: ``tutor.actions.answers_import`` refreshes it for the learners
    the result names.
    """
    total = RecordResult()
    with transaction.atomic():
        pending: list[Row] = []

        def flush() -> None:
            part = interaction_record(course=course, rows=pending, limit=None)
            total.learners.update(part.learners)
            total.created_count += part.created_count
            total.duplicate_count += part.duplicate_count
            total.learners_created += part.learners_created
            if on_batch:
                on_batch(len(pending))
            pending.clear()

        for row in rows:
            pending.append(row)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    return total
