"""A course's data out: interactions, mastery and fitted parameters as CSV, interactions as xAPI
statements (JSON lines, or posted to a learning record store).

Every export is an iterator over a server-side cursor (``QuerySet.iterator``), written in chunks of a
few dozen kilobytes, so a course of millions of answers streams in constant memory; the API and the
dashboard hand the iterators to a StreamingHttpResponse, ``manage.py course_export`` to a file or an
LRS. The statements are the ones ``POST xapi/statements`` maps back to the same interactions
(tutor/api/xapi.py; tests/tutor/test_exports.py sends them back).
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from core.errors import NotFound, ServiceError
from curriculum.models import Course, Item, Skill
from tracing.models import Fit, Mastery
from tutor.models import Interaction

ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
XAPI_VERSION = "1.0.3"
CHUNK_ROWS = 2_000
"""Rows fetched per round trip of the server-side cursor."""
CHUNK_BYTES = 64 * 1024
"""What one streamed chunk holds: a write per row would cost more than the row."""
LRS_BATCH = 500
"""Statements per POST to a learning record store (LRSs commonly cap a request's size)."""

INTERACTION_COLUMNS = (
    "id",
    "learner",
    "item",
    "correct",
    "timestamp",
    "response_time",
    "client_id",
    "response",
    "stored_at",
)
MASTERY_COLUMNS = ("learner", "skill", "probability", "updated_at", "fit")
PARAMETER_COLUMNS = ("fit", "model", "parameter", "skill", "item", "value")
EXPORTS = {
    "interactions.csv": "text/csv",
    "mastery.csv": "text/csv",
    "parameters.csv": "text/csv",
    "statements.jsonl": "application/x-ndjson",
}


class LrsFailed(ServiceError):
    """The learning record store could not be reached or refused a batch."""

    status = 502


class _Echo:
    """csv.writer's file: hands back each line instead of keeping it (Django's streaming-CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def _chunked(lines: Iterable[str]) -> Iterator[str]:
    buffered: list[str] = []
    size = 0
    for line in lines:
        buffered.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield "".join(buffered)
            buffered, size = [], 0
    if buffered:
        yield "".join(buffered)


def _csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def _when(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


ANSWER_FIELDS = (
    "pk",
    "learner__external_id",
    "item__external_id",
    "correct",
    "timestamp",
    "response_time",
    "client_id",
    "response",
)
"""What the interactions export and the statements read of each answer."""


def _answers(course: Course) -> QuerySet[Interaction]:
    return Interaction.objects.filter(course=course).order_by("pk")


def interactions_csv(*, course: Course) -> Iterator[str]:
    """Every answer of the course in the order stored, one CSV row each (INTERACTION_COLUMNS)."""
    rows = _answers(course).values_list(*ANSWER_FIELDS, "created_at").iterator(chunk_size=CHUNK_ROWS)
    return _chunked(
        _csv(
            INTERACTION_COLUMNS,
            (
                (
                    pk,
                    learner,
                    item,
                    correct,
                    _when(at),
                    "" if seconds is None else seconds,
                    client_id or "",
                    response,
                    _when(stored),
                )
                for pk, learner, item, correct, at, seconds, client_id, response, stored in rows
            ),
        )
    )


def mastery_csv(*, course: Course) -> Iterator[str]:
    """Every stored P(learner knows skill), by learner then skill (MASTERY_COLUMNS)."""
    rows = (
        Mastery.objects.filter(learner__course=course)
        .order_by("learner__external_id", "skill__external_id")
        .values_list("learner__external_id", "skill__external_id", "probability", "updated_at", "fit_id")
        .iterator(chunk_size=CHUNK_ROWS)
    )
    return _chunked(
        _csv(
            MASTERY_COLUMNS,
            ((learner, skill, probability, _when(at), fit or "") for learner, skill, probability, at, fit in rows),
        )
    )


def export_fit(*, course: Course, fit: int | None = None) -> Fit:
    """The fit whose parameters are exported: ``fit`` if given, else the active one."""
    found = (
        Fit.objects.filter(course=course, pk=fit) if fit is not None else Fit.objects.filter(course=course, active=True)
    ).first()
    if found is None:
        raise NotFound(
            f"fit {fit} not found in course {course.slug!r}"
            if fit is not None
            else f"course {course.slug!r} has no active fit yet",
            field="fit",
        )
    return found


def parameter_rows(params: Any, *, skills: set[str], items: set[str]) -> Iterator[tuple[str, str, str, Any]]:
    """(parameter, skill, item, value) for every number, text or flag in a fit's parameters, whatever the
    model's layout: a key that is a skill or item id of the course fills that column, the other keys
    (joined by dots) name the parameter. Pure."""

    def walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                yield from walk(inner, (*path, str(key)))
        elif isinstance(value, (list, tuple)):
            for index, inner in enumerate(value):
                yield from walk(inner, (*path, str(index)))
        elif (
            value is None
            or isinstance(value, (bool, str))
            or (isinstance(value, (int, float)) and math.isfinite(value))
        ):
            yield path, value

    for path, value in walk(params or {}, ()):
        skill = next((part for part in path if part in skills), "")
        item = next((part for part in path if part in items and part != skill), "")
        name = ".".join(part for part in path if part not in (skill, item)) or "value"
        yield name, skill, item, "" if value is None else value


def parameters_csv(*, course: Course, fit: int | None = None) -> Iterator[str]:
    """A fit's fitted parameters, one row per value (PARAMETER_COLUMNS); the active fit unless ``fit``."""
    found = export_fit(course=course, fit=fit)
    skills = set(Skill.objects.filter(course=course).values_list("external_id", flat=True))
    items = set(Item.objects.filter(course=course).values_list("external_id", flat=True))
    return _chunked(
        _csv(
            PARAMETER_COLUMNS,
            ((found.pk, found.kind, *row) for row in parameter_rows(found.fitted_params, skills=skills, items=items)),
        )
    )


def _base() -> str:
    return settings.TUTOR_XAPI_BASE_IRI.rstrip("/")


def activity_iri(*, course_slug: str, item: str) -> str:
    """An item's activity IRI: its id where that already is an absolute IRI, else one under the server's
    base whose last path segment is the item id (what the xAPI endpoint maps back to the item)."""
    if "://" in item:
        return item
    return f"{_base()}/courses/{quote(course_slug, safe='')}/items/{quote(item, safe='')}"


def _duration(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def statement_of(
    *,
    course_slug: str,
    pk: int,
    learner: str,
    item: str,
    correct: float,
    timestamp: datetime,
    response_time: float | None,
    client_id: str | None,
    response: str,
) -> dict[str, Any]:
    """One stored answer as an xAPI 'answered' statement. Its id is the answer's client id where that is
    a UUID (an answer that came in as a statement goes back out under its own id), else a UUID derived
    from the server, course and answer number, so exporting twice gives the same ids."""
    try:
        statement_id = str(uuid.UUID(client_id)) if client_id else None
    except ValueError:
        statement_id = None
    if statement_id is None:
        statement_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{_base()}/courses/{course_slug}/interactions/{pk}"))
    result: dict[str, Any] = {"score": {"scaled": correct}}
    if correct in (0.0, 1.0):
        result["success"] = correct == 1.0
    if response_time is not None:
        result["duration"] = _duration(response_time)
    if response:
        result["response"] = response
    return {
        "id": statement_id,
        "actor": {"objectType": "Agent", "account": {"homePage": _base(), "name": learner}},
        "verb": {"id": ANSWERED, "display": {"en-US": "answered"}},
        "object": {
            "objectType": "Activity",
            "id": activity_iri(course_slug=course_slug, item=item),
            "definition": {"type": "http://adlnet.gov/expapi/activities/cmi.interaction"},
        },
        "result": result,
        "timestamp": timestamp.isoformat(),
        "context": {
            "contextActivities": {
                "grouping": [{"id": f"{_base()}/courses/{quote(course_slug, safe='')}", "objectType": "Activity"}]
            }
        },
        "version": XAPI_VERSION,
    }


def statements(*, course: Course) -> Iterator[dict[str, Any]]:
    """Every answer of the course as an xAPI statement, in the order stored."""
    rows = _answers(course).values_list(*ANSWER_FIELDS).iterator(chunk_size=CHUNK_ROWS)
    for pk, learner, item, correct, timestamp, response_time, client_id, response in rows:
        yield statement_of(
            course_slug=course.slug,
            pk=pk,
            learner=learner,
            item=item,
            correct=correct,
            timestamp=timestamp,
            response_time=response_time,
            client_id=client_id,
            response=response,
        )


def statements_jsonl(*, course: Course) -> Iterator[str]:
    """The course's statements as JSON lines, one statement a line."""
    return _chunked(json.dumps(statement, separators=(",", ":")) + "\n" for statement in statements(course=course))


def export_stream(*, course: Course, name: str, fit: int | None = None) -> Iterator[str]:
    """The export ``name`` (a key of EXPORTS) of the course, as chunks of text."""
    if name == "interactions.csv":
        return interactions_csv(course=course)
    if name == "mastery.csv":
        return mastery_csv(course=course)
    if name == "parameters.csv":
        return parameters_csv(course=course, fit=fit)
    if name == "statements.jsonl":
        return statements_jsonl(course=course)
    raise NotFound(f"no export {name!r}: one of {', '.join(EXPORTS)}", field="export")


def export_response(*, course: Course, name: str, fit: int | None = None) -> StreamingHttpResponse:
    """The export ``name`` as a download named after the course, streamed as it is read (the API's and
    the dashboard's). A missing export or fit raises before the first byte."""
    stream = export_stream(course=course, name=name, fit=fit)
    response = StreamingHttpResponse(stream, content_type=f"{EXPORTS[name]}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-{name}"'
    response["Cache-Control"] = "no-store"
    return response


def _batches(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def statements_post(
    *,
    course: Course,
    endpoint: str,
    username: str = "",
    password: str = "",
    batch: int = LRS_BATCH,
    session: requests.Session | None = None,
    timeout: float = 30.0,
) -> int:
    """POST the course's statements to a learning record store's statements resource (``endpoint``, e.g.
    ``https://lrs.example/xapi/statements``) in batches, with HTTP basic credentials; returns how many
    were sent. A batch the LRS refuses stops the export with a ServiceError naming its status (the ids
    are stable, so running it again resends the same statements, which an LRS accepts or ignores)."""
    session = session or requests.Session()
    headers = {"X-Experience-API-Version": XAPI_VERSION, "Content-Type": "application/json"}
    auth = (username, password) if username or password else None
    sent = 0
    for chunk in _batches(statements(course=course), batch):
        try:
            response = session.post(endpoint, data=json.dumps(chunk), headers=headers, auth=auth, timeout=timeout)
        except requests.RequestException as error:
            raise LrsFailed(
                f"the LRS at {endpoint} could not be reached after {sent} statements: {error}", code="lrs_unreachable"
            ) from None
        if response.status_code >= 300:
            raise LrsFailed(
                f"the LRS at {endpoint} answered {response.status_code} after {sent} statements: {response.text[:300]}",
                code="lrs_refused",
            )
        sent += len(chunk)
    return sent
