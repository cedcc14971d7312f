"""Importing interaction files, one file in one transaction (all or nothing, re-importing adds nothing).

On PostgreSQL a file streams through a staging table of the transaction, a chunk at a time, and learners,
items and duplicates are resolved set-wise in SQL; memory does not grow with the file. A ``csv`` file's
lines are copied as they are and checked in SQL (``_lines_staged``); a file outside that path's grammar,
and any other format, is parsed and checked in Python (``_rows_staged``). Elsewhere (SQLite) the file is
parsed whole, then written in batches.

Either way the learners with new answers are marked ``mastery_pending`` (tutor.activity): their stored
mastery does not include the file until ``tracing.services.mastery_refresh_pending`` has run, which the
caller (``tutor.actions.answers_import``) starts once the file has committed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone as django_timezone

from core.errors import ServiceError
from core.sql import tables_analyze
from core.validation import clean_text, timestamp_bounds
from curriculum.models import Course, Item, Skill
from tracing.formats import FormatError, Record, csv_header, csv_positions, csv_skills, read_records
from tutor.activity import activity_add_staged, activity_fold, activity_pending_mark
from tutor.hot_queries import row_triggers_skippable, row_triggers_skipped
from tutor.models import Interaction, Learner, LearnerActivity
from tutor.services import MAX_RESPONSE_TIME, Row, interactions_import, row_validate

_STAGE = "tutor_import_stage"
_STAGE_LEARNERS = "tutor_import_learners"
_STAGE_ITEMS = "tutor_import_items"
_STAGE_DAYS = "tutor_import_days"
_STAGE_LEARNER_NAMES = "tutor_import_chunk_learners"
_STAGE_ITEM_NAMES = "tutor_import_chunk_items"
_STAGE_NAMES = (
    (Learner._meta.db_table, "learner", _STAGE_LEARNER_NAMES),
    (Item._meta.db_table, "item", _STAGE_ITEM_NAMES),
)
"""The chunk's learners and items (name -> id; ``_references_resolve``): the table, the staged column, the
chunk table."""


def _vocabulary_ensure(course: Course, item_skills: dict[str, tuple[str, ...]]) -> tuple[int, int]:
    """Create the skills and items named (item -> its skills); existing ones are left as they are."""
    skill_names = sorted({s for skills in item_skills.values() for s in skills})
    existing_skills = set(Skill.objects.filter(course=course).values_list("external_id", flat=True))
    new_skills = [Skill(course=course, external_id=s, name=s) for s in skill_names if s not in existing_skills]
    Skill.objects.bulk_create(new_skills, batch_size=2000)
    existing_items = set(Item.objects.filter(course=course).values_list("external_id", flat=True))
    new_items = [Item(course=course, external_id=i) for i in item_skills if i not in existing_items]
    Item.objects.bulk_create(new_items, batch_size=2000)
    if new_items:
        skill_pk = dict(Skill.objects.filter(course=course).values_list("external_id", "id"))
        item_pk = dict(
            Item.objects.filter(course=course, external_id__in=[i.external_id for i in new_items]).values_list(
                "external_id", "id"
            )
        )
        links = [
            Item.skills.through(item_id=item_pk[item.external_id], skill_id=skill_pk[s])
            for item in new_items
            for s in item_skills[item.external_id]
        ]
        Item.skills.through.objects.bulk_create(links, batch_size=5000, ignore_conflicts=True)
    return len(new_skills), len(new_items)


class _Checked:
    """Turns a file's records into validated Rows one at a time, collecting what the file's vocabulary
    needs (item -> skills: as many entries as items, not answers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.now = django_timezone.now()
        self.item_skills: dict[str, tuple[str, ...]] = {}
        self.known_skills: set[str] = set()
        self.first_timed: bool | None = None
        self._fresh_items: list[str] = []
        self.count = 0
        self._line, self._step = -1, -1

    def items_taken(self) -> list[str]:
        """The items first met since the last call, in file order."""
        fresh, self._fresh_items = self._fresh_items, []
        return fresh

    def rows(self, records: Iterable[Record]) -> Iterator[tuple[Record, Row]]:
        path = self.path
        for record in records:
            if self.first_timed is None:
                self.first_timed = record.timed
            if record.item not in self.item_skills:
                self.item_skills[record.item] = record.skills or (record.item,)
                self._fresh_items.append(record.item)
            # Files without ids get one from their position, so a re-import finds them again. A line's records
            # come one after another, so counting them needs no memory of earlier lines.
            self._step = self._step + 1 if record.line == self._line else 0
            self._line = record.line
            raw = {
                "learner": record.learner,
                "item": record.item,
                "correct": record.correct,
                "timestamp": record.timestamp,
                "id": record.client_id or f"{path.name}:{record.line}:{self._step}",
                "response_time": record.response_time,
            }
            try:
                row = row_validate(raw, self.count, now=self.now)
            except ServiceError as error:
                raise FormatError(path, record.line, error.message.split(": ", 1)[-1]) from None
            for skill in record.skills:
                if skill not in self.known_skills:
                    try:
                        self.known_skills.add(clean_text(skill))
                    except ValueError as error:
                        raise FormatError(path, record.line, f"skill {error}") from None
            self.count += 1
            yield record, row


def file_import(
    *, course_slug: str, path: Path, format: str, course_name: str = "", on_rows: Callable[[int], Any] | None = None
) -> tuple[dict[str, int], Course]:
    """Import one file into a course, creating the course, skills and items it needs. Returns a
    summary and the course; the learners with new answers are marked ``mastery_pending``, their mastery is
    the caller's (``tutor.actions.answers_import``).

    Raises FormatError (file, line, reason) and keeps nothing of the file: the file's syntax, and every
    value checked as the API checks it (a timestamp outside the accepted range, say). ``on_rows`` hears of
    each chunk stored; a ``csv`` file that leaves the SQL path part way is counted again from its start.
    """
    if connection.vendor == "postgresql":
        path = Path(path)
        if format == "csv":
            try:
                with transaction.atomic():
                    return _file_import_streaming(
                        course_slug=course_slug,
                        path=path,
                        course_name=course_name,
                        on_rows=on_rows,
                        staging=functools.partial(_lines_staged, path=path, now=django_timezone.now()),
                    )
            except (_Unusual, FormatError, psycopg.DataError):
                pass  # rolled back to before the file: the Python reader imports it, or names its first error
        return _file_import_streaming(
            course_slug=course_slug,
            path=path,
            course_name=course_name,
            on_rows=on_rows,
            staging=functools.partial(_rows_staged, path=path, format=format),
        )
    checked = _Checked(Path(path))
    pairs = list(checked.rows(read_records(path, format)))  # parsed and checked whole before anything is written
    first_of: dict[str, Row] = {}
    for record, row in pairs:
        if row.client_id is not None and first_of.setdefault(row.client_id, row) != row:
            raise FormatError(
                path, record.line, f"id {row.client_id!r} appears earlier in the file with different content"
            )
    with transaction.atomic():
        course = _course_get_or_create(course_slug, course_name, untimed=checked.first_timed is False)
        skills_created, items_created = _vocabulary_ensure(course, checked.item_skills)
        result = interactions_import(course=course, rows=[row for _, row in pairs], on_batch=on_rows)
        activity_pending_mark(learner_pks=result.learners.values())
    summary = {
        "created": result.created_count,
        "duplicates": result.duplicate_count,
        "learners_created": result.learners_created,
        "items_created": items_created,
        "skills_created": skills_created,
        "rows": len(pairs),
    }
    return summary, course


def import_statistics_refresh(*, created: int) -> None:
    """After a file's commit: ANALYZE the tables a file grows (answers, learners, their sums;
    ``core.sql.tables_analyze``), so the mastery refresh and the next fit plan with the file's rows.
    Autovacuum would in its own time, if it is on; a fit started right after an import does not wait."""
    if created > 0:
        tables_analyze([Interaction._meta.db_table, Learner._meta.db_table, LearnerActivity._meta.db_table])


def _course_get_or_create(course_slug: str, course_name: str, *, untimed: bool) -> Course:
    course, created = Course.objects.get_or_create(slug=course_slug, defaults={"name": course_name or course_slug})
    if created and untimed:
        course.has_clock = False
        course.save(update_fields=["has_clock"])
    return course


CHUNK_ROWS = 100_000
"""Rows per staging round: the file is read and checked one chunk ahead of the database (two at most in
memory, about 10 MB each)."""
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def _copy_number(value: float | None) -> str:
    return "\\N" if value is None else repr(value)  # repr: the shortest text that reads back as the same float


def _chunks_read(path: Path, format: str, checked: _Checked) -> Iterator[tuple[bytes, int, list[str]]]:
    """The file's checked rows as COPY text, CHUNK_ROWS rows a piece, with the items first met in each."""
    lines: list[str] = []
    for record, row in checked.rows(read_records(path, format)):
        lines.append(
            f"{checked.count}\t{record.line}\t{_copy_text(row.learner)}\t{_copy_text(row.item)}\t"
            f"{row.correct!r}\t{row.timestamp.isoformat()}\t{_copy_number(row.response_time)}\t"
            f"{_copy_text(row.client_id)}\n"
        )
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines).encode("utf-8"), len(lines), checked.items_taken()
            lines = []
    if lines or not checked.count:
        yield "".join(lines).encode("utf-8"), len(lines), checked.items_taken()


class _ReadAhead:
    """Runs ``_chunks_read`` on a thread, one chunk ahead: the file is parsed and checked (Python, holding
    the GIL) while the database inserts the previous chunk (psycopg waits without it), so both cores work."""

    _END = object()

    def __init__(self, pieces: Iterator[Any]) -> None:
        self._pieces, self._stop = pieces, threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="import-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for piece in self._pieces:
                if not self._put(piece):
                    return
            self._put(self._END)
        except BaseException as error:  # noqa: BLE001 - handed to the importing thread, which raises it
            self._put(error)

    def __iter__(self) -> Iterator[Any]:
        while True:
            piece = self._queue.get()
            if piece is self._END:
                return
            if isinstance(piece, BaseException):
                raise piece
            yield piece

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class _Staged:
    """One chunk of the file, staged in ``_STAGE``: its answers, the items first met in it (name -> skills),
    and whether the file's first answer has no clock (the course it creates then has none)."""

    count: int
    items: dict[str, tuple[str, ...]]
    untimed: bool = False


class _Unusual(Exception):
    """The file leaves the grammar ``_lines_staged`` checks in SQL: it goes through the Python reader."""


def _file_import_streaming(
    *,
    course_slug: str,
    path: Path,
    course_name: str,
    on_rows: Callable[[int], Any] | None,
    staging: Callable[[Any], Generator[_Staged]],
) -> tuple[dict[str, int], Course]:
    """PostgreSQL: ``staging`` fills the staging table of the transaction a chunk at a time (``_rows_staged``:
    the Python reader's checked rows; ``_lines_staged``: the file's lines, checked in SQL), and each chunk is
    resolved and inserted set-wise. Memory: the file's items and skills and a chunk or two."""
    path = Path(path)
    interaction = Interaction._meta.db_table
    course: Course | None = None
    created = learners_created = skills_created = items_created = rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper: COPY, and no query log
        staged = ", ".join(
            (_STAGE, _STAGE_LEARNERS, _STAGE_ITEMS, _STAGE_DAYS, _STAGE_LEARNER_NAMES, _STAGE_ITEM_NAMES)
        )
        raw.execute(f"DROP TABLE IF EXISTS {staged}")
        # skills (the line's skill field) and ok (it passed the checks) are _lines_staged's.
        raw.execute(
            f"CREATE TEMP TABLE {_STAGE} (seq bigint, line integer, learner text, item text, correct float8, "
            "moment timestamptz, response_time float8, client_id text, skills text, ok boolean) ON COMMIT DROP"
        )
        # The file's sums (tutor.activity) per learner, item and day, added to as each chunk goes in.
        raw.execute(
            f"CREATE TEMP TABLE {_STAGE_LEARNERS} (learner_id bigint PRIMARY KEY, answers bigint, "
            "correct float8, last_timestamp timestamptz, last_stored timestamptz) ON COMMIT DROP"
        )
        for _, _, names in _STAGE_NAMES:
            raw.execute(f"CREATE TEMP TABLE {names} (name text, id bigint) ON COMMIT DROP")
        raw.execute(
            f"CREATE TEMP TABLE {_STAGE_ITEMS} (item_id bigint PRIMARY KEY, answers bigint, correct float8) "
            "ON COMMIT DROP"
        )
        raw.execute(
            f"CREATE TEMP TABLE {_STAGE_DAYS} (clock boolean, day date, answers bigint, correct float8, "
            "PRIMARY KEY (clock, day)) ON COMMIT DROP"
        )
        before = raw.execute(f"SELECT coalesce(max(id), 0) FROM {interaction}").fetchone()[0]
        unchecked = row_triggers_skippable()
        # The statistics of the learner and item tables lag behind what this transaction creates (a new
        # course's learners look like a handful): a nested loop over them would be quadratic in the file.
        raw.execute("SET LOCAL enable_nestloop = off")
        raw.execute("SET LOCAL jit = off")
        with contextlib.closing(staging(raw)) as chunks:
            for chunk in chunks:
                if course is None:
                    course = _course_get_or_create(course_slug, course_name, untimed=chunk.untimed)
                    if unchecked:
                        # The course row, as the foreign key check of every answer would (see _chunk_insert).
                        raw.execute(f"SELECT 1 FROM {Course._meta.db_table} WHERE id = %s FOR KEY SHARE", [course.pk])
                if chunk.items:
                    new_skills, new_items = _vocabulary_ensure(course, chunk.items)
                    skills_created, items_created = skills_created + new_skills, items_created + new_items
                chunk_learners, chunk_created = _chunk_insert(raw, course, unchecked=unchecked)
                learners_created += chunk_learners
                created += chunk_created
                rows += chunk.count
                if chunk_created < chunk.count and created:
                    _conflicts_check(raw, path, course, before)
                if on_rows is not None:
                    on_rows(chunk.count)
        raw.execute("RESET enable_nestloop")
        raw.execute("RESET jit")
        if course is not None:
            activity_add_staged(course_pk=course.pk, learners=_STAGE_LEARNERS, items=_STAGE_ITEMS, days=_STAGE_DAYS)
            transaction.on_commit(functools.partial(activity_fold, course_pk=course.pk), robust=True)
        raw.execute(f"DROP TABLE {staged}")
    summary = {
        "created": created,
        "duplicates": rows - created,
        "learners_created": learners_created,
        "items_created": items_created,
        "skills_created": skills_created,
        "rows": rows,
    }
    assert course is not None, "the transaction above made or found the course"
    return summary, course


def _rows_staged(raw: Any, path: Path, format: str) -> Generator[_Staged]:
    """The Python reader's checked rows (``_Checked``, on a thread one chunk ahead) by COPY into ``_STAGE``,
    a chunk at a time; any format, any file. An empty file still gives one (empty) chunk: its course."""
    checked = _Checked(path)
    reader = _ReadAhead(_chunks_read(path, format, checked))
    try:
        for data, count, fresh_items in reader:
            raw.execute(f"TRUNCATE {_STAGE}")
            with raw.copy(
                f"COPY {_STAGE} (seq, line, learner, item, correct, moment, response_time, client_id) FROM STDIN"
            ) as copy:
                copy.write(data)
            del data
            items = {name: checked.item_skills[name] for name in fresh_items}
            yield _Staged(count=count, items=items, untimed=checked.first_timed is False)
    finally:
        reader.close()


_RAW = "tutor_import_stage_lines"
_FILE_ITEMS = "tutor_import_file_items"
_LINE_LIMIT = 131_072
"""Longer lines go through the Python reader: the csv module refuses a field over 131,072 characters."""
_WIDEST = 64
"""A header of more columns goes through the Python reader: the lines' table has a column for each (and
PostgreSQL refuses a table of over 1,600), while the reader reads seven and ignores the rest."""
_ODD_BYTES = b'"\x00\x0b\x0c\x1c\x1d\x1e\x1f'
"""Bytes that leave the lines' grammar: the quote (the csv module's rules for quotes are not COPY's), NUL, and
the ASCII whitespace other than space, tab and line ends that ``str.strip`` strips."""
_ODD_SPACES = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
"""The rest of what ``str.isspace`` calls whitespace (``str.strip`` strips it; SQL's btrim strips spaces)."""
_NUMBER = "^ *([0-9]{1,20}([.][0-9]{0,20})?|[.][0-9]{1,20}) *$"
"""A number in [0, 1e20) that Python's float and PostgreSQL's float8 read alike (and to the same double)."""


def _lines_staged(raw: Any, path: Path, now: datetime) -> Generator[_Staged]:
    """PostgreSQL, the ``csv`` format: the file's lines go by COPY (CSV) into a table of text columns, a chunk
    at a time, and one statement checks and converts them into ``_STAGE`` as ``read_csv`` and
    ``row_validate`` would: Python only reads bytes. It checks a grammar narrower than the reader's (no
    quotes, blank lines only at the end, integer timestamps, plain decimal numbers, short fields): a file
    outside it raises ``_Unusual`` (or COPY's DataError), for the Python reader to import or to refuse at
    its exact line. Inside it, every line the reader would refuse is outside it too."""
    delimiter, names = csv_header(path)
    positions = csv_positions(names)
    learner, item, skill, correct, moment, response, client_id = positions
    if min(learner, item, correct, moment) < 0 or len(names) > _WIDEST:
        raise _Unusual  # a header without a required column (the reader's error), or one too wide
    earliest, latest = timestamp_bounds(now)
    width = len(names)
    odd = _ODD_BYTES if delimiter == "\t" else _ODD_BYTES + b"\t"
    raw.execute(f"DROP TABLE IF EXISTS {_RAW}, {_FILE_ITEMS}")
    columns = ", ".join(f"c{index} text" for index in range(width))
    # n: the line's number (the header is line 1; blank lines inside the file leave the grammar).
    raw.execute(f"CREATE TEMP TABLE {_RAW} (n bigint GENERATED ALWAYS AS IDENTITY (START 2), {columns}) ON COMMIT DROP")
    raw.execute(f"CREATE TEMP TABLE {_FILE_ITEMS} (name text PRIMARY KEY) ON COMMIT DROP")
    parse = _lines_parse_sql(positions)
    separator = "E'\\t'" if delimiter == "\t" else "','"
    fields = ", ".join(f"c{index}" for index in range(width))
    copy_sql = f"COPY {_RAW} ({fields}) FROM STDIN (FORMAT csv, DELIMITER {separator})"
    values = {
        "name": path.name,
        "earliest": earliest.timestamp(),
        "latest": latest.timestamp(),
        "longest": MAX_RESPONSE_TIME,
    }
    total, blank_seen = 0, False
    with path.open("rb") as handle:
        header = handle.readline()
        if b'"' in header or header.count(b"\r") != header.endswith(b"\r\n"):
            raise _Unusual  # the header is not line 1 alone as the reader reads it
        while lines := list(itertools.islice(handle, CHUNK_ROWS)):
            if blank_seen:  # blank lines are the reader's only at the end of the file
                if any(line.strip(b"\r\n") for line in lines):
                    raise _Unusual
                continue
            while lines and not lines[-1].strip(b"\r\n"):
                lines.pop()
                blank_seen = True
            if not lines:
                continue
            data = b"".join(lines)
            if (
                b"\n\n" in data
                or b"\n\r\n" in data
                or data.startswith((b"\n", b"\r\n"))
                or data.count(b"\r") != data.count(b"\r\n")
                or b"\\." in data  # COPY's end-of-data marker
                or len(data.translate(None, odd)) != len(data)
                or max(map(len, lines)) > _LINE_LIMIT
                or not (data.isascii() or not _ODD_SPACES.search(_utf8(data)))
            ):
                raise _Unusual
            del lines
            raw.execute(f"TRUNCATE {_RAW}, {_STAGE}")
            with raw.copy(copy_sql) as copy:
                copy.write(data)
            del data
            count = _lines_check(raw, parse, values)
            total += count
            found = raw.execute(
                f"SELECT DISTINCT ON (s.item) s.item, s.skills, s.seq FROM {_STAGE} AS s WHERE NOT EXISTS "
                f"(SELECT FROM {_FILE_ITEMS} AS f WHERE f.name = s.item) ORDER BY s.item, s.seq"
            ).fetchall()
            found.sort(key=operator.itemgetter(2))  # in file order, as the reader meets them
            raw.execute(f"INSERT INTO {_FILE_ITEMS} SELECT unnest(%s::text[])", [[name for name, _, _ in found]])
            yield _Staged(count=count, items={name: csv_skills(skills) or (name,) for name, skills, _ in found})
    if not total:
        raise _Unusual  # no answers: the reader's path (the course, or the header's error)
    raw.execute(f"DROP TABLE {_RAW}, {_FILE_ITEMS}")


def _lines_check(raw: Any, statement: str, values: dict[str, Any]) -> int:
    """The staged lines checked and converted into ``_STAGE`` (``_lines_parse_sql``); how many answers.
    ``_Unusual`` where a line fails a check."""
    count, ok = raw.execute(statement, values).fetchone()
    if not ok:
        raise _Unusual
    return int(count)


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unusual from None


def _lines_parse_sql(positions: list[int]) -> str:
    """The statement that checks and converts the staged lines (``_lines_staged``) into ``_STAGE``; returns
    how many answers, and whether every line passed. Each check is ``read_csv``'s and ``row_validate``'s on
    lines without odd bytes: fields stripped of spaces, learner and item of 1 to 200 characters, a skill
    field and an id of at most 200, ``correct`` a number in [0, 1], the timestamp whole unix seconds (ms
    above 1e11) within ``timestamp_bounds``, ``response_time`` empty or a number up to MAX_RESPONSE_TIME;
    an id, where the line has none, from the line's place. Every conversion waits for its check (CASE)."""

    def field(index: int) -> str:
        return f"c{index}" if index >= 0 else "NULL::text"

    learner, item, skill, correct, moment, response, client_id = (field(index) for index in positions)
    seconds = "CASE WHEN stamp > 100000000000 THEN stamp::float8 / 1000 ELSE stamp::float8 END"
    return (
        f"WITH staged AS (INSERT INTO {_STAGE} (seq, line, learner, item, skills, correct, moment, response_time, "
        "client_id, ok) "
        "SELECT n, n, learner, item, skill, correct, "
        "CASE WHEN stamp > 100000000000 THEN timestamptz 'epoch' + stamp * interval '1 millisecond' "
        "ELSE timestamptz 'epoch' + stamp * interval '1 second' END, response, client_id, "
        "coalesce(learner <> '' AND char_length(learner) <= 200 AND item <> '' AND char_length(item) <= 200 "
        f"AND coalesce(char_length(skill), 0) <= 200 AND correct <= 1 AND {seconds} "
        "BETWEEN %(earliest)s AND %(latest)s AND (response IS NULL OR response <= %(longest)s) "
        "AND char_length(client_id) <= 200, false) "
        f"FROM (SELECT n, btrim({learner}, ' ') AS learner, btrim({item}, ' ') AS item, {skill} AS skill, "
        f"CASE WHEN {correct} IN ('0', '1') THEN {correct}::float8 "
        f"WHEN {correct} ~ '{_NUMBER}' THEN btrim({correct}, ' ')::float8 END AS correct, "
        f"CASE WHEN ltrim(btrim({moment}, ' '), '0123456789') = '' "
        f"AND octet_length(btrim({moment}, ' ')) BETWEEN 1 AND 13 THEN btrim({moment}, ' ')::bigint END AS stamp, "
        f"CASE WHEN coalesce(btrim({response}, ' '), '') = '' THEN NULL "
        f"WHEN {response} ~ '{_NUMBER}' THEN btrim({response}, ' ')::float8 ELSE 'NaN' END AS response, "
        f"coalesce(nullif(btrim({client_id}, ' '), ''), %(name)s || ':' || n || ':0') AS client_id "
        f"FROM {_RAW} OFFSET 0) AS fields RETURNING ok) "
        "SELECT count(*), coalesce(bool_and(ok), true) FROM staged"
    )


def _references_resolve(raw: Any, course: Course, *, lock: bool) -> None:
    """The staged chunk's learners and items, name -> id, into their chunk tables (``_STAGE_NAMES``), each
    found by one probe of the course's unique (course, external id) index: the rows read are the chunk's,
    however many the course has (a join with the learner table read all of the course's learners for every
    chunk: 73.7 s at 20M answers, issue 18).

    The probes are forced: the statistics lag behind what this transaction creates, and on them the planner
    took the course's own index, reading every learner of the course for each chunk and matching each against
    the chunk's names (1.1 s a chunk at 12,000 learners, quadratic). Sequential and bitmap scans are priced
    out for these statements, and each probe asks for the unique index's order, which only that index gives.

    ``lock``: and lock those rows FOR KEY SHARE, in id order, till the transaction ends: what the
    foreign-key trigger of each answer would do at commit (its check is ``SELECT 1 ... FOR KEY SHARE`` on
    the referenced row), once per learner and item rather than once per answer. A learner or item deleted
    meanwhile cannot go until this commits (and then its own foreign-key check finds these answers and
    fails), so every answer inserted against these rows keeps a row to point to."""
    for _, column, names in _STAGE_NAMES:
        raw.execute(f"TRUNCATE {names}")
        raw.execute(f"INSERT INTO {names} (name) SELECT DISTINCT {column} FROM {_STAGE}")
    raw.execute("SET LOCAL enable_seqscan = off")
    raw.execute("SET LOCAL enable_bitmapscan = off")
    for table, _, names in _STAGE_NAMES:
        raw.execute(
            f"UPDATE {names} AS chunk SET id = (SELECT t.id FROM {table} AS t WHERE t.course_id = %s "
            "AND t.external_id = chunk.name ORDER BY t.course_id, t.external_id LIMIT 1)",
            [course.pk],
        )
        if lock:
            raw.execute(
                f"SELECT count(*) FROM (SELECT t.id FROM {table} AS t WHERE t.id = ANY(ARRAY(SELECT id FROM {names})) "
                "ORDER BY t.id FOR KEY SHARE OF t) AS locked"
            )
    raw.execute("RESET enable_seqscan")
    raw.execute("RESET enable_bitmapscan")


def _chunk_insert(raw: Any, course: Course, *, unchecked: bool) -> tuple[int, int]:
    """The staged chunk into the course: its new learners, then its answers; (learners created, answers
    created). The learners touched are added to the staging learners table.

    ``unchecked``: the answers go in without their foreign-key triggers (``row_triggers_skipped`` for
    that one statement; their constraints stay, and every other writer's triggers still
    fire). Every answer is a join of the staged row with the chunk's learner and item rows, which
    ``_references_resolve`` has found and locked as the triggers would have (and the course row is locked once per
    import): each answer's course, learner and item exist when it is inserted and till it commits, which
    is what the triggers check. Those deferred triggers were most of an import's commit (issue 18)."""
    learner = Learner._meta.db_table
    now = django_timezone.now()
    # The chunk's learners, in code-point order of their ids (as the batch path creates them, so their pks
    # follow the same order). Not only those of rows not stored before: that test scanned the course's
    # answers once per chunk (quadratic in the file); a learner all of whose rows are stored already exists,
    # unless those rows were stored under another learner's name.
    learners_created = raw.execute(
        f"WITH created AS (INSERT INTO {learner} (course_id, external_id, goal, created_at) "
        f"SELECT %s, name, '', %s FROM (SELECT DISTINCT learner AS name FROM {_STAGE}) AS names "
        f'ORDER BY name COLLATE "C" ON CONFLICT (course_id, external_id) DO NOTHING RETURNING 1) '
        "SELECT count(*) FROM created",
        [course.pk, now],
    ).fetchone()[0]
    # In file order, so ids (which break ties of equal timestamps) follow the file; a client id stored
    # before, or met earlier in the file, stores nothing (the unique index decides, race-free). What went
    # in is summed into the file's per-learner, per-item and per-day sums (tutor.activity) on the way.
    zone = django_timezone.get_current_timezone_name()
    _references_resolve(raw, course, lock=unchecked)
    with row_triggers_skipped() if unchecked else contextlib.nullcontext():
        created = _answers_insert(raw, course, now, zone)
    return learners_created, created


def _answers_insert(raw: Any, course: Course, now: Any, zone: str) -> int:
    """The staged chunk's answers (course, learners and items resolved) into the course, in file order,
    summed into the file's sums on the way; how many went in."""
    interaction = Interaction._meta.db_table
    return raw.execute(
        f"WITH inserted AS (INSERT INTO {interaction} (course_id, learner_id, item_id, correct, timestamp, "
        "response_time, client_id, response, created_at) "
        f"SELECT %s, l.id, i.id, s.correct, s.moment, s.response_time, s.client_id, '', %s FROM {_STAGE} AS s "
        f"JOIN {_STAGE_LEARNER_NAMES} AS l ON l.name = s.learner JOIN {_STAGE_ITEM_NAMES} AS i ON i.name = s.item "
        "ORDER BY s.seq "
        "ON CONFLICT (course_id, client_id) DO NOTHING RETURNING learner_id, item_id, correct, timestamp, created_at), "
        f"touched AS (INSERT INTO {_STAGE_LEARNERS} AS t SELECT learner_id, count(*), sum(correct), max(timestamp), "
        "max(created_at) FROM inserted GROUP BY learner_id ON CONFLICT (learner_id) DO UPDATE SET "
        "answers = t.answers + excluded.answers, correct = t.correct + excluded.correct, "
        "last_timestamp = greatest(t.last_timestamp, excluded.last_timestamp), "
        "last_stored = greatest(t.last_stored, excluded.last_stored) RETURNING 1), "
        f"items AS (INSERT INTO {_STAGE_ITEMS} AS t SELECT item_id, count(*), sum(correct) FROM inserted "
        "GROUP BY item_id ON CONFLICT (item_id) DO UPDATE SET answers = t.answers + excluded.answers, "
        "correct = t.correct + excluded.correct), "
        f"days AS (INSERT INTO {_STAGE_DAYS} AS t SELECT clock, day, count(*), sum(correct) FROM ("
        "SELECT true AS clock, (timestamp AT TIME ZONE %s)::date AS day, correct FROM inserted UNION ALL "
        "SELECT false, (created_at AT TIME ZONE %s)::date, correct FROM inserted) AS both_days "
        "GROUP BY clock, day ON CONFLICT (clock, day) DO UPDATE SET answers = t.answers + excluded.answers, "
        "correct = t.correct + excluded.correct) "
        "SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM touched)",
        [course.pk, now, zone, zone],
    ).fetchone()[0]


def _conflicts_check(raw: Any, path: Path, course: Course, before: int) -> None:
    """A client id met twice in the file must mean the same answer both times (as within an API batch):
    a later line that differs from the one stored from this file is a FormatError naming that line."""
    interaction = Interaction._meta.db_table
    # The stored answer's learner and item by the chunk's names (``_references_resolve``): one that is not
    # among them has a name no row of the chunk has, so the row differs (name NULL here), as it should.
    found = raw.execute(
        f"SELECT s.line, s.client_id FROM {_STAGE} AS s "
        f"JOIN {interaction} AS x ON x.course_id = %s AND x.client_id = s.client_id AND x.id > %s "
        f"LEFT JOIN {_STAGE_LEARNER_NAMES} AS l ON l.id = x.learner_id "
        f"LEFT JOIN {_STAGE_ITEM_NAMES} AS i ON i.id = x.item_id "
        "WHERE (l.name, i.name, x.correct, x.timestamp, x.response_time) IS DISTINCT FROM "
        "(s.learner, s.item, s.correct, s.moment, s.response_time) ORDER BY s.seq LIMIT 1",
        [course.pk, before],
    ).fetchone()
    if found is not None:
        raise FormatError(path, found[0], f"id {found[1]!r} appears earlier in the file with different content")
