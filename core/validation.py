"""One check per kind of value that comes from outside: text, numbers, timestamps and JSON documents.

Every entry point (REST, xAPI, the web pages, the file importer, management
commands) reaches these through its own validator, which adds where the value
sat (field, row, line). Each check raises ``ValueError`` with a reason for
people; nothing here knows about HTTP.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone as django_timezone

MAX_JSON_INTEGER = 2**63 - 1
"""Larger JSON integers are refused when parsed: no field needs them, a database column cannot hold them, and
turning one of hundreds of digits into a float overflows."""


class JSONRefused(ValueError):
    """A JSON text that parses in Python but that the service does not accept; ``code`` says which rule."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number", code="malformed_json")


def _bounded_int(text: str) -> int:
    # The digit count is checked first: int() of a 4,000-digit string is the slow part.
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_JSON_INTEGER:
        raise JSONRefused(
            f"the integer {text[:24]}{'...' if len(text) > 24 else ''} is out of range "
            f"(at most {MAX_JSON_INTEGER} in magnitude)",
            code="invalid_number",
        )
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused(f"the number {text[:24]} is out of range", code="invalid_number")
    return value


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, which PostgreSQL text cannot hold; a lone UTF-16 surrogate,
    which UTF-8 cannot encode), or None."""
    if "\x00" in text:
        return "NUL characters (\\u0000) are not accepted"
    if text.isascii():  # the common case, and no surrogate is ASCII: no encoding to try (a file import's hot path)
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone UTF-16 surrogates (\\ud800-\\udfff) are not accepted"
    return None


def _strings_checked(document: Any) -> None:
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise JSONRefused(problem, code="invalid_character")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def json_loads(text: str | bytes) -> Any:
    """Parse a JSON text as strictly as the service needs: no NaN/Infinity, no number that overflows a
    float or an int64, no NUL or lone surrogate in any string (keys included).

    Raises JSONRefused (a ValueError with ``code``) for those, ValueError for text that is not JSON.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except RecursionError:
        raise JSONRefused("the JSON is nested too deeply", code="malformed_json") from None
    _strings_checked(document)
    return document


def clean_text(value: Any, *, limit: int | None = 200, strip: bool = True, allow_empty: bool = False) -> str:
    """A JSON string (never a number: ``12`` and ``"12"`` must not silently become the same id) of at most
    ``limit`` characters, storable in every database. Raises ValueError with the reason."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_kind(value)}")
    text = value.strip() if strip else value
    if not text and not allow_empty:
        raise ValueError("must not be empty")
    if limit is not None and len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def clean_number(value: Any, *, low: float, high: float) -> float:
    """A JSON number (not a boolean, not a string) within [low, high]. Raises ValueError with the reason."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"must be a number in [{low:g}, {high:g}]")
    return number


def timestamp_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """[earliest, latest] accepted for an answer's moment: TUTOR_EARLIEST_TIMESTAMP and now plus
    TUTOR_CLOCK_SKEW (clients' clocks run ahead; nothing answered in the far future)."""
    return settings.TUTOR_EARLIEST_TIMESTAMP, (now or django_timezone.now()) + settings.TUTOR_CLOCK_SKEW


def clean_timestamp(value: Any, *, now: datetime | None = None) -> datetime:
    """An answer's moment as an aware UTC datetime within ``timestamp_bounds``.

    Takes a datetime (naive = UTC), unix seconds (int or float) or an ISO 8601
    string (naive = UTC). The bounds are checked after conversion to UTC: a
    moment valid as written (``9999-12-31T23:00:00-05:00``) can lie outside
    what the database stores. Raises ValueError with the reason.
    """
    earliest, latest = timestamp_bounds(now)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # Compare the number before converting it: fromtimestamp overflows on 1e20 and on nan.
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds) or not earliest.timestamp() <= seconds <= latest.timestamp():
            raise ValueError(_out_of_range(earliest, latest))
        return datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value[:64]!r} is not ISO 8601") from None
    else:
        raise ValueError("must be an ISO 8601 string or unix seconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # past year 9999 or before year 1 once in UTC
        raise ValueError(_out_of_range(earliest, latest)) from None
    if not earliest <= moment <= latest:
        raise ValueError(_out_of_range(earliest, latest))
    return moment


def _out_of_range(earliest: datetime, latest: datetime) -> str:
    return (
        f"must lie between {earliest.isoformat().replace('+00:00', 'Z')} and now plus "
        f"{_seconds_text(settings.TUTOR_CLOCK_SKEW)} ({latest.isoformat(timespec='seconds').replace('+00:00', 'Z')})"
    )


def _seconds_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 86400:g} day(s)" if seconds >= 86400 and seconds % 86400 == 0 else f"{seconds:g} s"


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
