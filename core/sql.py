"""Generic SQL helpers for SQLite and PostgreSQL alike: IN-lists in chunks, upserts, and values in the
form each database stores. They know no table; callers name theirs."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

CHUNK = 5_000  # below SQLite's bound on query variables


def rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    """The rows of one query."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def rows_in(sql: str, first: Sequence[Any], values: Sequence[Any]) -> list[tuple]:
    """``sql`` with one ``{marks}`` for an IN list, run per chunk of ``values`` (after the ``first``
    parameters); every chunk's rows."""
    found: list[tuple] = []
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        found.extend(rows(sql.format(marks=", ".join(["%s"] * len(chunk))), [*first, *chunk]))
    return found


def keyed_rows(sql: str, first: Sequence[Any], values: Sequence[Any]) -> dict[Any, Any]:
    """``rows_in`` of a query selecting (key, value) pairs, as a dict."""
    return dict(rows_in(sql, first, values))


def upsert(
    *, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: Sequence[str], update: Sequence[str]
) -> None:
    """INSERT ... ON CONFLICT (``conflict``) DO UPDATE SET ``update``, in chunks (SQLite and PostgreSQL).

    Values must already be in database form: datetimes through ``db_datetime``, JSON as text.
    """
    width = len(columns)
    per_statement = max(1, CHUNK // width)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET " + ", ".join(
        f"{column} = excluded.{column}" for column in update
    )
    row_marks = "(" + ", ".join(["%s"] * width) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(head + ", ".join([row_marks] * len(chunk)) + tail, [value for row in chunk for value in row])


def db_datetime(moment: datetime) -> Any:
    """An aware datetime as the database stores it (SQLite: naive UTC text; PostgreSQL: as is)."""
    return connection.ops.adapt_datetimefield_value(moment)


def json_value(value: Any) -> Any:
    """A JSON column as read back: SQLite hands text, PostgreSQL the decoded value."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def moment(value: Any) -> datetime:
    """A datetime column as read back in raw SQL, aware and in UTC."""
    # SQLite hands back text where PostgreSQL hands back an aware datetime; both are stored in UTC.
    parsed = parse_datetime(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def tables_analyze(tables: Sequence[str]) -> None:
    """ANALYZE these tables (PostgreSQL; a no-op elsewhere) after a bulk write grew or rewrote them, so the
    statements that follow plan with their new row counts. A table filled by one big transaction has no
    statistics, or its empty self's, until autovacuum (where it is on) gets round to it; meanwhile the
    planner takes a query by a few learners for most of the table and scans it (at 20M answers: a
    recompute batch's count 0.6 s, the dashboard's heatmap 3.6 s, then 2 ms analysed). ANALYZE reads a
    sample (under a second at 40M rows here) and blocks no reader or writer."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


@contextmanager
def queries_unlogged() -> Iterator[None]:
    """Run a bulk job (an import, a fit) without Django's query log on this connection: under
    ``DJANGO_DEBUG`` it keeps the SQL of the last 9,000 queries, and a bulk job's statements carry up to
    100,000 values each, so the log alone would hold gigabytes."""
    saved = connection.queries_log
    connection.queries_log = deque(maxlen=0)
    try:
        yield
    finally:
        connection.queries_log = saved
