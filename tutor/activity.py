"""Answers summed per learner, per item and per course-day, kept with the answers themselves (issue 18).

The dashboard's counts (answers per day, the most active learners, item statistics, the course's totals)
read these small tables instead of grouping a course's millions of answers. Every way answers come and go
keeps them: ``tutor.services.interaction_record`` adds what it stored in its transaction (so a batch and
its sums commit together, or neither does), the streaming import adds a file's sums in its transaction,
and an erasure (``tutor.privacy``) subtracts the learner's. Additions are upserts of the form
``n = n + excluded.n``, so answers recorded at once never lose a count.

Item and day sums come in parts that add up. Answers recorded one request at a time add to parts 0 to
-(LIVE_PARTS - 1), the part chosen by the database connection (its backend pid): every answer of a course
adds to the course's day row, and a row's lock is held until its transaction commits, so with one row all
of a course's answers would queue behind each other's commits (while a big fit writes, a commit's WAL
flush slows and that queue stalled every request for seconds); on parts, answers on different
connections do not wait for each other. A file import writes to a part of its own (its backend's pid,
positive, which no running transaction shares), so the rows live answers add to are never held for the
import's minutes, and folds it into part 0 in a short transaction once it has committed
(``activity_fold``; a fold that never ran leaves the sums right, only in more rows). Readers sum the
parts. ``activity_rebuild`` computes everything again from the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, BooleanField, Count, Max, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone as django_timezone

from core.sql import CHUNK, db_datetime
from tutor.models import DayActivity, Interaction, ItemActivity, LearnerActivity

_LEARNERS = LearnerActivity._meta.db_table
_ITEMS = ItemActivity._meta.db_table
_DAYS = DayActivity._meta.db_table

LIVE_PARTS = 8
"""How many parts live answers spread a course's item and day sums over (see the module's docstring)."""

Answered = tuple[int, int, float, datetime, datetime]
"""One stored answer as the sums see it: (learner pk, item pk, correct, timestamp, stored at)."""


def answer_day(moment: datetime) -> date:
    """The day an answer counts under: its date in the server's time zone, as the ORM's TruncDate reads it."""
    return django_timezone.localtime(moment).date()


@dataclass
class Tally:
    """Sums of some answers: per learner [answers, correct, last timestamp, last stored], per item and
    per (clock, day) [answers, correct]."""

    learners: dict[int, list[Any]] = field(default_factory=dict)
    items: dict[int, list[float]] = field(default_factory=dict)
    days: dict[tuple[bool, date], list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, answers: Iterable[Answered]) -> Tally:
        tally = cls()
        for learner, item, correct, timestamp, stored in answers:
            entry = tally.learners.get(learner)
            if entry is None:
                tally.learners[learner] = [1, correct, timestamp, stored]
            else:
                entry[0] += 1
                entry[1] += correct
                entry[2] = max(entry[2], timestamp)
                entry[3] = max(entry[3], stored)
            for sums in (
                tally.items.setdefault(item, [0, 0.0]),
                tally.days.setdefault((True, answer_day(timestamp)), [0, 0.0]),
                tally.days.setdefault((False, answer_day(stored)), [0, 0.0]),
            ):
                sums[0] += 1
                sums[1] += correct
        return tally


def _greatest(left: str, right: str) -> str:
    return f"{'GREATEST' if connection.vendor == 'postgresql' else 'MAX'}({left}, {right})"


def _add(
    table: str,
    keys: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    fixed: Sequence[str] = (),
    summed: Sequence[str] = ("answers", "correct"),
    latest: Sequence[str] = (),
) -> None:
    """Upsert ``rows`` (values of ``keys``, ``fixed``, ``summed``, ``latest`` in that order): a stored row
    gets each ``summed`` value added and keeps the greater of each ``latest``; ``fixed`` is written only
    with a new row. Rows go in key order, so two transactions adding to the same rows take their locks in
    the same order and queue instead of deadlocking."""
    if not rows:
        return
    rows.sort(key=lambda row: row[: len(keys)])
    columns = [*keys, *fixed, *summed, *latest]
    update = [f"{name} = {table}.{name} + excluded.{name}" for name in summed]
    update += [f"{name} = {_greatest(f'{table}.{name}', f'excluded.{name}')}" for name in latest]
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, CHUNK // len(columns))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(chunk))} "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(update)}",
                [value for row in chunk for value in row],
            )


def live_part() -> int:
    """The part this connection's live answers add to: 0 to -(LIVE_PARTS - 1) on PostgreSQL, 0 elsewhere
    (SQLite runs one write transaction at a time anyway)."""
    if connection.vendor != "postgresql":
        return 0
    connection.ensure_connection()
    return -(connection.connection.info.backend_pid % LIVE_PARTS)


def _items_days_add(course_pk: int, tally: Tally, sign: int) -> None:
    part = live_part()
    _add(
        _ITEMS,
        ("item_id", "part"),
        [(item, part, course_pk, sign * n, sign * correct) for item, (n, correct) in tally.items.items()],
        fixed=("course_id",),
    )
    _add(
        _DAYS,
        ("course_id", "clock", "day", "part"),
        [(course_pk, clock, day, part, sign * n, sign * correct) for (clock, day), (n, correct) in tally.days.items()],
    )


def activity_record(*, course_pk: int, answers: Sequence[Answered]) -> None:
    """Add newly stored answers to the sums, in the transaction that stored them (call it last: the item
    and day rows it writes are shared by the course's learners and stay locked until the commit)."""
    if not answers:
        return
    tally = Tally.of(answers)
    _add(
        _LEARNERS,
        ("learner_id",),
        [
            (learner, course_pk, n, correct, db_datetime(last), db_datetime(stored))
            for learner, (n, correct, last, stored) in tally.learners.items()
        ],
        fixed=("course_id",),
        latest=("last_timestamp", "last_stored"),
    )
    _items_days_add(course_pk, tally, 1)


def activity_of_learner(*, learner_pk: int) -> Tally:
    """The sums of one learner's stored answers per item and day (what their erasure takes away)."""
    answers = Interaction.objects.filter(learner_id=learner_pk).order_by()
    tally = Tally()
    for item, n, correct in answers.values_list("item_id").annotate(n=Count("id"), total=Sum("correct")):
        tally.items[item] = [n, correct]
    for clock, moment in ((True, "timestamp"), (False, "created_at")):
        for day, n, correct in (
            answers.annotate(day=TruncDate(moment)).values_list("day").annotate(n=Count("id"), total=Sum("correct"))
        ):
            tally.days[clock, day] = [n, correct]
    return tally


def activity_subtract(*, course_pk: int, tally: Tally) -> None:
    """Take an erased learner's answers (``activity_of_learner``, read before they went) out of the course's
    item and day sums; the learner's own row goes with the learner (CASCADE)."""
    _items_days_add(course_pk, tally, -1)


def activity_add_staged(*, course_pk: int, learners: str, items: str, days: str) -> None:
    """PostgreSQL: add a file import's sums, gathered in its temporary tables (``learners``: learner_id,
    answers, correct, last_timestamp, last_stored; ``items``: item_id, answers, correct; ``days``: clock,
    day, answers, correct), in its transaction, and mark the learners ``mastery_pending`` (their stored
    mastery leaves the file out until its refresh runs). Items and days go to the import's own part (its
    backend's pid); the learners' rows are the file's own learners."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_LEARNERS} AS t (learner_id, course_id, answers, correct, last_timestamp, last_stored, "
            "mastery_pending) "
            f"SELECT learner_id, %s, answers, correct, last_timestamp, last_stored, true FROM {learners} "
            "ORDER BY learner_id ON CONFLICT (learner_id) DO UPDATE SET answers = t.answers + excluded.answers, "
            "correct = t.correct + excluded.correct, "
            "last_timestamp = greatest(t.last_timestamp, excluded.last_timestamp), "
            "last_stored = greatest(t.last_stored, excluded.last_stored), mastery_pending = true",
            [course_pk],
        )
        # A part left by an earlier import on this backend whose fold did not run is added to.
        cursor.execute(
            f"INSERT INTO {_ITEMS} AS t (item_id, part, course_id, answers, correct) "
            f"SELECT item_id, pg_backend_pid(), %s, answers, correct FROM {items} ORDER BY item_id "
            "ON CONFLICT (item_id, part) DO UPDATE SET answers = t.answers + excluded.answers, "
            "correct = t.correct + excluded.correct",
            [course_pk],
        )
        cursor.execute(
            f"INSERT INTO {_DAYS} AS t (course_id, clock, day, part, answers, correct) "
            f"SELECT %s, clock, day, pg_backend_pid(), answers, correct FROM {days} ORDER BY clock, day "
            "ON CONFLICT (course_id, clock, day, part) DO UPDATE SET answers = t.answers + excluded.answers, "
            "correct = t.correct + excluded.correct",
            [course_pk],
        )


def activity_pending_mark(*, learner_pks: Iterable[int], pending: bool = True) -> None:
    """Mark these learners' mastery as pending (a file stored answers of theirs without the online update;
    the SQLite import: the PostgreSQL one marks them in ``activity_add_staged``) or, ``pending=False``, as
    up to date again (``tracing.services.mastery_refresh_pending``, in the transaction that writes it)."""
    pks = sorted(set(learner_pks))
    for start in range(0, len(pks), CHUNK):
        LearnerActivity.objects.filter(learner_id__in=pks[start : start + CHUNK]).update(mastery_pending=pending)


def activity_pending(
    *, course_pk: int, after: int = 0, limit: int = 2_000, among: Sequence[int] | None = None
) -> list[int]:
    """The course's learners (pks above ``after``, ascending, at most ``limit``; only those ``among``, where
    given) whose mastery is pending."""
    found = LearnerActivity.objects.filter(course_id=course_pk, mastery_pending=True, learner_id__gt=after)
    if among is not None:
        found = found.filter(learner_id__in=list(among))
    return list(found.order_by("learner_id").values_list("learner_id", flat=True)[:limit])


def activity_pending_courses() -> list[int]:
    """The courses (pks, ascending) with at least one learner whose mastery is pending."""
    return list(
        LearnerActivity.objects.filter(mastery_pending=True)
        .order_by("course_id")
        .values_list("course_id", flat=True)
        .distinct()
    )


def activity_mastery_pending(*, learner_pk: int) -> bool:
    """Whether answers of this learner stored by a file import are not in their stored mastery yet."""
    return LearnerActivity.objects.filter(learner_id=learner_pk, mastery_pending=True).exists()


def activity_fold(*, course_pk: int) -> None:
    """Fold the course's import parts (positive) into part 0, each table in one statement that deletes
    exactly the rows it adds (an import committing meanwhile keeps its part for the next fold); the live
    parts (0 and below) stay where they are."""
    if connection.vendor != "postgresql":
        return  # SQLite imports go through interaction_record: part 0 only
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {_ITEMS} WHERE course_id = %s AND part > 0 "
            "RETURNING item_id, course_id, answers, correct) "
            f"INSERT INTO {_ITEMS} (item_id, part, course_id, answers, correct) "
            "SELECT item_id, 0, course_id, sum(answers), sum(correct) FROM gone GROUP BY item_id, course_id "
            f"ORDER BY item_id ON CONFLICT (item_id, part) DO UPDATE SET answers = {_ITEMS}.answers + "
            f"excluded.answers, correct = {_ITEMS}.correct + excluded.correct",
            [course_pk],
        )
        cursor.execute(
            f"WITH gone AS (DELETE FROM {_DAYS} WHERE course_id = %s AND part > 0 "
            "RETURNING course_id, clock, day, answers, correct) "
            f"INSERT INTO {_DAYS} (course_id, clock, day, part, answers, correct) "
            "SELECT course_id, clock, day, 0, sum(answers), sum(correct) FROM gone GROUP BY course_id, clock, day "
            f"ORDER BY clock, day ON CONFLICT (course_id, clock, day, part) DO UPDATE SET answers = "
            f"{_DAYS}.answers + excluded.answers, correct = {_DAYS}.correct + excluded.correct",
            [course_pk],
        )


def _insert_select(table: str, columns: Sequence[str], query: Any) -> None:
    """INSERT INTO ``table`` the rows of an ORM query (its SELECT compiled by Django for this database)."""
    select, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) {select}", params)


def activity_rebuild(*, course_pk: int | None = None) -> None:
    """Compute the sums again from the stored answers (of one course, or all), in SQL: the migration that
    added them, and a repair. Holds the rows it rewrites until its transaction ends. The learners' pending
    mastery marks are not kept: finish a course's refresh (``tracing.services.mastery_refresh_pending``)
    before rebuilding its sums."""
    answers = Interaction.objects.order_by()
    if course_pk is not None:
        answers = answers.filter(course_id=course_pk)
    with transaction.atomic():
        for model in (LearnerActivity, ItemActivity, DayActivity):
            (model.objects.all() if course_pk is None else model.objects.filter(course_id=course_pk)).delete()
        _insert_select(
            _LEARNERS,
            ("learner_id", "course_id", "answers", "correct", "last_timestamp", "last_stored"),
            answers.values_list("learner_id", "course_id").annotate(
                n=Count("id"), total=Sum("correct"), last=Max("timestamp"), stored=Max("created_at")
            ),
        )
        _insert_select(
            _ITEMS,
            ("item_id", "course_id", "answers", "correct", "part"),
            answers.values_list("item_id", "course_id").annotate(
                n=Count("id"), total=Sum("correct"), part=Value(0, output_field=BigIntegerField())
            ),
        )
        for clock, moment in ((True, "timestamp"), (False, "created_at")):
            _insert_select(
                _DAYS,
                ("course_id", "day", "answers", "correct", "clock", "part"),
                answers.annotate(day=TruncDate(moment))
                .values_list("course_id", "day")
                .annotate(
                    n=Count("id"),
                    total=Sum("correct"),
                    clock=Value(clock, output_field=BooleanField()),
                    part=Value(0, output_field=BigIntegerField()),
                ),
            )
