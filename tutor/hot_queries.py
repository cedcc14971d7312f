"""The reads every recorded answer and every next-item request make, in plain SQL.

On these two paths the ORM's query building cost about three times the query itself
(measured here: 0.45 ms against 0.13 ms of Python CPU for one lookup by key on PostgreSQL),
so the handful of reads they repeat on every request are written out here, once, for SQLite
and PostgreSQL alike; bench/hotpath.py measures the paths. Everything else uses the ORM.
Each function takes primary keys (or a course's key and external ids) and returns plain values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection

from core import sql
from core.sql import CHUNK, keyed_rows
from tutor.models import Interaction, Learner

_INTERACTION = Interaction._meta.db_table
_LEARNER = Learner._meta.db_table


def stored_client_ids(*, course_pk: int, client_ids: Sequence[str]) -> dict[str, int]:
    """client id -> interaction pk, for those of ``client_ids`` the course already holds."""
    return keyed_rows(
        f"SELECT client_id, id FROM {_INTERACTION} WHERE course_id = %s AND client_id IN ({{marks}})",
        [course_pk],
        client_ids,
    )


def learner_pks(*, course_pk: int, external_ids: Sequence[str]) -> dict[str, int]:
    """external id -> learner pk, for those of ``external_ids`` the course has."""
    return keyed_rows(
        f"SELECT external_id, id FROM {_LEARNER} WHERE course_id = %s AND external_id IN ({{marks}})",
        [course_pk],
        external_ids,
    )


def learners_lock(*, learner_pks: Sequence[int]) -> None:
    """Hold these learners' rows until the transaction ends, so that one learner's online updates run one
    after another: each reads the state the previous one committed (issue 15, lost updates).

    One query per chunk, rows locked in primary-key order, so two batches naming the same learners in
    any order queue up instead of deadlocking. FOR NO KEY UPDATE, not FOR UPDATE: an answer being
    inserted for the learner holds FOR KEY SHARE on the row (its foreign key), which FOR UPDATE would
    wait on, and two requests that had each inserted their answer would deadlock. SQLite has no row
    locks and needs none: the project opens its transactions IMMEDIATE, which takes the database's
    write lock at BEGIN (tutor/settings.py).
    """
    if connection.vendor != "postgresql":
        return
    ordered = sorted(set(learner_pks))
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        sql.rows(
            f"SELECT id FROM {_LEARNER} WHERE id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY id FOR NO KEY UPDATE",
            chunk,
        )


def learner_row(*, course_pk: int, external_id: str) -> tuple[int, int | None, datetime] | None:
    """(pk, user pk, created at) of the course's learner ``external_id``, or None."""
    rows = sql.rows(
        f"SELECT id, user_id, created_at FROM {_LEARNER} WHERE course_id = %s AND external_id = %s",
        [course_pk, external_id],
    )
    return (rows[0][0], rows[0][1], sql.moment(rows[0][2])) if rows else None


def learner_exposure(
    *, learner_pk: int | None, limit: int
) -> tuple[list[tuple[int, float]], dict[int, tuple[int, float, float | None]]]:
    """The learner's last ``limit`` answers as (item pk, correct), oldest first, and their whole record
    per item: item pk -> (answers, last answer, last wrong answer or None; epoch seconds), in one round
    trip (the next-item path needs both). A learner not stored yet (``learner_pk`` None) has answered
    nothing."""
    if learner_pk is None:
        return [], {}
    moment = _epoch("timestamp")
    # The typed NULL: PostgreSQL types a bare NULL in a subquery as text, which the UNION cannot match.
    rows = sql.rows(
        f"SELECT * FROM (SELECT 0, item_id, correct, {moment}, id, CAST(NULL AS DOUBLE PRECISION) "
        f"FROM {_INTERACTION} "
        f"WHERE learner_id = %s ORDER BY timestamp DESC, id DESC LIMIT %s) AS recent "
        f"UNION ALL SELECT 1, item_id, NULL, {_epoch('MAX(timestamp)')}, COUNT(*), "
        f"{_epoch('MAX(CASE WHEN correct < 0.5 THEN timestamp END)')} FROM {_INTERACTION} "
        f"WHERE learner_id = %s GROUP BY item_id",
        [learner_pk, limit, learner_pk],
    )
    recent = sorted((_seconds(at), pk, item, float(correct)) for part, item, correct, at, pk, _ in rows if not part)
    record = {
        item: (int(count), _seconds(at), None if wrong is None else _seconds(wrong))
        for part, item, _, at, count, wrong in rows
        if part
    }
    return [(item, correct) for _, _, item, correct in recent], record


def _epoch(timestamp: str) -> str:
    """SQL for ``timestamp`` in its cheapest form to read back: on PostgreSQL epoch seconds, a float
    (a learner's practice is ~140 timestamps per next-item request, and building an aware datetime
    for each was 6% of that request's CPU); on SQLite its stored text."""
    return f"EXTRACT(EPOCH FROM {timestamp})::float8" if connection.vendor == "postgresql" else timestamp


def _seconds(value: Any) -> float:
    return value if isinstance(value, float) else sql.moment(value).timestamp()


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def copy_columns(
    query: str,
    params: Sequence[Any],
    columns: Sequence[str],
    *,
    expected: int = 0,
    convert: dict[int, Any] | None = None,
) -> tuple[np.ndarray, ...]:
    """PostgreSQL only: the rows of ``query`` (every column ``bigint`` or ``double precision``, never NULL:
    cast in the SQL) as one numpy array per column, of the type ``columns`` says: "i" int64, "f" float64,
    "i4" int32, "f4" float32 (converted block by block, so the 8-byte values are never all held).

    Binary COPY: every row has the same width, so the rows land in numpy by blocks, without a Python object
    per row (a fit reads millions). ``convert`` maps a column's number to a function applied to each
    block of its values before they are stored (a lookup, say). ``expected`` (a row count, e.g. from a
    count query) sizes the arrays at once; they grow if more rows come.
    """
    width = len(columns)
    fields = [("count", ">i2")]
    kinds = {"i": np.int64, "f": np.float64, "i4": np.int32, "f4": np.float32}
    for number, kind in enumerate(columns):
        fields += [(f"length{number}", ">i4"), (f"value{number}", ">i8" if kind.startswith("i") else ">f8")]
    row_type = np.dtype(fields)
    outputs = [np.empty(max(expected, 1024), dtype=kinds[kind]) for kind in columns]
    filled = 0
    pending = bytearray()
    header = True

    def take(block: bytes | bytearray) -> int:
        nonlocal outputs, filled
        rows = np.frombuffer(block, dtype=row_type)
        if len(rows) and (rows["count"] != width).any():
            raise ValueError("binary COPY row of another width (a NULL, or a column not cast)")
        if filled + len(rows) > len(outputs[0]):
            size = max(filled + len(rows), 2 * len(outputs[0]))
            outputs = [np.resize(output, size) for output in outputs]
        for number in range(width):
            values = rows[f"value{number}"]
            if convert and number in convert:
                values = convert[number](values)
            outputs[number][filled : filled + len(rows)] = values
        filled += len(rows)
        return len(rows) * row_type.itemsize

    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)", params or None) as copy:
            for block in copy:
                pending += block
                if header:
                    if len(pending) < 19:
                        continue
                    if not pending.startswith(_COPY_SIGNATURE):
                        raise ValueError("not a binary COPY stream")
                    extension = int.from_bytes(pending[15:19], "big")
                    del pending[: 19 + extension]
                    header = False
                if len(pending) >= (1 << 20):
                    usable = len(pending) - len(pending) % row_type.itemsize
                    if len(pending) == usable:
                        usable -= row_type.itemsize  # keep the last bytes: they may be the trailer
                    del pending[: take(bytes(pending[:usable]))]
    if pending[-2:] != b"\xff\xff":
        raise ValueError("binary COPY stream without its trailer")
    del pending[-2:]
    if len(pending) % row_type.itemsize:
        raise ValueError("binary COPY stream with a partial row")
    take(bytes(pending))
    return tuple(output[:filled].copy() if len(output) > 2 * filled + 1024 else output[:filled] for output in outputs)


def course_learners_lock(*, course_pk: int) -> None:
    """``learners_lock`` for every learner of a course (a fit's activation), in one statement: the rows
    are locked in key order by the server, and no pk list comes back to Python."""
    if connection.vendor != "postgresql":
        return
    sql.rows(
        f"SELECT count(*) FROM (SELECT id FROM {_LEARNER} WHERE course_id = %s ORDER BY id "
        "FOR NO KEY UPDATE) AS locked",
        [course_pk],
    )


def copy_columns_in(table: str, columns: Sequence[str], values: Sequence[np.ndarray]) -> None:
    """PostgreSQL only: rows into ``table`` by binary COPY from numpy arrays (int64 arrays to ``bigint``
    columns, float64 arrays to ``double precision``), built as one buffer: no Python object per row."""
    count = len(values[0]) if values else 0
    fields = [("count", ">i2")]
    for number, value in enumerate(values):
        fields += [(f"length{number}", ">i4"), (f"value{number}", ">i8" if value.dtype.kind in "iu" else ">f8")]
    rows = np.empty(count, dtype=np.dtype(fields))
    rows["count"] = len(values)
    for number, value in enumerate(values):
        rows[f"length{number}"] = 8
        rows[f"value{number}"] = value
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(_COPY_SIGNATURE + b"\x00\x00\x00\x00\x00\x00\x00\x00")
            copy.write(rows.tobytes())
            copy.write(b"\xff\xff")


def row_triggers_skippable() -> bool:
    """PostgreSQL: whether this connection's role may set ``session_replication_role`` (a superuser, or on
    PostgreSQL 15 and later a role granted ``SET ON PARAMETER session_replication_role``), which
    ``row_triggers_skipped`` needs; False elsewhere."""
    if connection.vendor != "postgresql":
        return False
    if connection.pg_version >= 150000:
        query = "SELECT has_parameter_privilege('session_replication_role', 'SET')"
    else:
        query = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    return bool(sql.rows(query, [])[0][0])


@contextmanager
def row_triggers_skipped() -> Iterator[None]:
    """The statements run inside fire no triggers (``session_replication_role = replica`` till the block
    ends, in the caller's transaction): a bulk insert without a foreign-key trigger per row. Only for a
    caller that has locked every row its rows point to ``FOR KEY SHARE`` or stronger (what those triggers
    do, one row at a time, at commit), and only inside a transaction. The constraints stay; other writers'
    triggers fire as ever."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('session_replication_role')")
        role = cursor.fetchone()[0]
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            yield
        finally:
            cursor.execute("SELECT set_config('session_replication_role', %s, true)", [role])
