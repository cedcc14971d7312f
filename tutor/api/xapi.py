"""xAPI statements -> interaction rows (pure: the caller says which item ids exist).

Mapping, one statement at a time:

- verb: only ``http://adlnet.gov/expapi/verbs/answered`` is recorded; any other verb is
  reported back as ignored (an LMS forwarding its whole statement stream is not an error).
- actor -> learner id: ``account.name``, else ``mbox`` without ``mailto:``, else
  ``mbox_sha1sum``, else ``openid``.
- object.id -> item id: the full IRI if an item has it as its id, else the IRI's
  fragment if it has one, else its last path segment, percent-decoded
  (``http://example.com/activities/q17`` -> ``q17``).
- result -> correct: ``result.score.scaled`` (negative scores count as 0), else
  ``result.success`` (true 1, false 0); a statement with neither is refused.
- statement id -> the interaction's client id, so a re-sent statement is a duplicate.
- timestamp -> timestamp (now when absent); result.duration -> response_time in
  seconds; result.response -> response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from core.errors import ServiceError
from core.validation import clean_number, clean_text, text_problem

ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass
class Mapped:
    """``rows`` (interaction dicts) came from the statements at ``positions``; ``ignored`` holds (position, reason)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    ignored: list[tuple[int, str]] = field(default_factory=list)


def _error(index: int, field_name: str, message: str, code: str = "invalid_statement") -> ServiceError:
    return ServiceError(f"statement {index}: {message}", code=code, field=field_name, index=index)


def learner_of(actor: Any, index: int) -> str:
    if not isinstance(actor, Mapping):
        raise _error(index, "actor", "actor must be an object naming one learner")
    account = actor.get("account")
    candidates = [
        ("actor.account.name", account.get("name") if isinstance(account, Mapping) else None),
        ("actor.mbox", actor.get("mbox")),
        ("actor.mbox_sha1sum", actor.get("mbox_sha1sum")),
        ("actor.openid", actor.get("openid")),
    ]
    for where, value in candidates:
        if isinstance(value, str) and value.strip():
            try:
                name = clean_text(value.strip().removeprefix("mailto:") if where == "actor.mbox" else value)
            except ValueError as error:
                raise _error(index, where, f"{where} {error}") from None
            return name
    raise _error(index, "actor", "actor needs account.name, mbox, mbox_sha1sum or openid")


def item_candidates(iri: str) -> tuple[str, str]:
    """(full IRI, short id): the short id is the fragment, else the last path segment, percent-decoded."""
    parts = urlsplit(iri)
    short = parts.fragment or parts.path.rstrip("/").rsplit("/", 1)[-1] or iri
    return iri, unquote(short)


def duration_seconds(value: Any) -> float | None:
    """An ISO 8601 duration of days, hours, minutes, seconds (``PT1M30.5S``) in seconds; None if absent or odd."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if not match or value.strip() in ("P", "PT"):
        return None
    scale = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}
    return sum(float(amount) * scale[name] for name, amount in match.groupdict().items() if amount)


def _correct(result: Any, index: int) -> float:
    if not isinstance(result, Mapping):
        raise _error(
            index, "result", "an answered statement needs result.score.scaled or result.success", code="xapi_no_result"
        )
    score = result.get("score")
    if isinstance(score, Mapping) and "scaled" in score:
        try:
            scaled = clean_number(score["scaled"], low=-1.0, high=1.0)
        except ValueError:
            raise _error(index, "result.score.scaled", "result.score.scaled must be a number in [-1, 1]") from None
        return max(0.0, scaled)
    success = result.get("success")
    if isinstance(success, bool):
        return 1.0 if success else 0.0
    raise _error(
        index, "result", "an answered statement needs result.score.scaled or result.success", code="xapi_no_result"
    )


def statements_map(statements: list[Any], *, existing_items: Callable[[Iterable[str]], set[str]]) -> Mapped:
    """Map statements to interaction rows. ``existing_items(ids)`` returns which of ``ids`` are the course's items.

    Raises ServiceError naming the statement (``index``) and the field at fault.
    """
    mapped = Mapped()
    pending: list[tuple[int, dict[str, Any], str]] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            raise _error(index, "", "a statement must be an object")
        verb = statement.get("verb")
        verb_id = verb.get("id") if isinstance(verb, Mapping) else None
        if not isinstance(verb_id, str):
            raise _error(index, "verb.id", "verb.id is required")
        if verb_id != ANSWERED:
            mapped.ignored.append((index, f"verb {verb_id} is not {ANSWERED}"))
            continue
        target = statement.get("object")
        iri = target.get("id") if isinstance(target, Mapping) else None
        if not isinstance(iri, str) or not iri.strip():
            raise _error(index, "object.id", "object.id (the question's IRI) is required")
        result = statement.get("result")
        row: dict[str, Any] = {"learner": learner_of(statement.get("actor"), index), "correct": _correct(result, index)}
        if statement.get("id") is not None:
            row["id"] = statement["id"]
        if statement.get("timestamp") is not None:
            row["timestamp"] = statement["timestamp"]
        details: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
        seconds = duration_seconds(details.get("duration"))
        if seconds is not None:
            row["response_time"] = seconds
        if isinstance(details.get("response"), str):
            row["response"] = details["response"][:2000]
        pending.append((index, row, iri.strip()))
    # Only names that could be item ids are looked up: percent-decoding can yield a NUL, which a query cannot hold.
    known = existing_items(
        {
            name
            for _, _, iri in pending
            for name in item_candidates(iri)
            if len(name) <= 200 and text_problem(name) is None
        }
    )
    for index, row, iri in pending:
        full, short = item_candidates(iri)
        if full in known:
            row["item"] = full
        elif short in known:
            row["item"] = short
        else:
            raise _error(
                index,
                "object.id",
                f"activity {iri!r} matches no item of the course (tried the full IRI and {short!r})",
                code="unknown_item",
            )
        mapped.rows.append(row)
        mapped.positions.append(index)
    return mapped
