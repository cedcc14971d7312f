"""Parsers for interaction files: the DKVMN/DKT 3-line format, pyBKT/ASSISTments CSV,
a plain CSV and DBE-KT22's preprocessed 5-line format. Pure: no Django.

Every parser yields :class:`Record`s and raises :class:`FormatError` naming the
file, the line and the reason at the first malformed line.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tracing.data import Dataset, dataset_from_records

FORMATS = ("dkvmn", "pybkt", "csv", "dbe")


class FormatError(ValueError):
    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


@dataclass(frozen=True)
class Record:
    """One answer. ``timestamp`` is unix seconds; ``timed`` says whether it is a real
    clock reading or a synthetic one (one second per step) for untimed formats."""

    learner: str
    item: str
    skills: tuple[str, ...]
    correct: float
    timestamp: float
    line: int
    client_id: str | None = None
    response_time: float | None = None
    timed: bool = True


def _correct(path: Path, line: int, value: str) -> float:
    try:
        correct = float(value)
    except ValueError:
        raise FormatError(path, line, f"correct must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= correct <= 1.0:
        raise FormatError(path, line, f"correct must be in [0, 1], got {value!r}")
    return correct


def parse_timestamp(value: str) -> float:
    """Unix seconds (int/float; ms when > 1e11) or an ISO 8601 string (naive = UTC)."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return number / 1000.0 if number > 1e11 else number


def _ints(path: Path, line: int, text: str, what: str) -> list[str]:
    values = [v.strip() for v in text.strip().rstrip(",").split(",")]
    for value in values:
        if not value.lstrip("-").isdigit():
            raise FormatError(path, line, f"{what} must be integers, got {value!r}")
    return values


def read_dkvmn(path: Path) -> Iterator[Record]:
    """3-line records: length, skill ids, correctness. The skill id stands in as the item.

    Learners are ``<file stem>:<record number>``; time is one second per step.
    """
    path = Path(path)
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 3:
        raise FormatError(path, len(lines), "file ends inside a record (expected 3 lines per learner)")
    for start in range(0, len(lines), 3):
        number = start + 1
        length_text = lines[start].strip().rstrip(",")
        if not length_text.isdigit():
            raise FormatError(path, number, f"expected a sequence length, got {length_text!r}")
        length = int(length_text)
        skills = _ints(path, number + 1, lines[start + 1], "skill ids")
        answers = _ints(path, number + 2, lines[start + 2], "correctness values")
        if len(skills) != length or len(answers) != length:
            raise FormatError(path, number, f"length {length} but {len(skills)} skill ids and {len(answers)} answers")
        learner = f"{path.stem}:{start // 3 + 1}"
        for step, (skill, answer) in enumerate(zip(skills, answers)):
            yield Record(
                learner, skill, (skill,), _correct(path, number + 2, answer), float(step), number + 1, timed=False
            )


def _read_lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        try:
            return handle.read().splitlines()
        except UnicodeDecodeError as error:
            raise FormatError(path, error.object[: error.start].count(b"\n") + 1, "not UTF-8 text") from None


def _csv_table(path: Path) -> Generator[tuple[int, list[str]]]:
    """A CSV file (comma or tab) as lists: first (1, its header's names, stripped and lower-case), then each
    row that is not blank with its line number (the last line of a row that spans lines), every number as
    ``csv.DictReader`` gives it, errors' included. Rows as lists, for the readers whose every row counts (a
    file import: no dict per row)."""
    reader = None
    line = 0  # as DictReader's line_num: an unreadable byte is reported on the line after it
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as handle:
            delimiter = _csv_delimiter(handle.read(8192))
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            line = reader.line_num
            if not header:
                raise FormatError(path, 1, "empty file: expected a header row")
            names = [name.strip().lower() for name in header]
            yield 1, names
            width = len(names)
            for row in reader:
                line = reader.line_num
                while row == []:
                    row = next(reader)
                line = reader.line_num
                if len(row) > width:
                    raise FormatError(path, line, "more fields than the header has")
                yield line, row
    except StopIteration:  # blank lines at the end
        return
    except UnicodeDecodeError:
        raise FormatError(path, line + 1 if reader else 1, "not UTF-8 text") from None
    except csv.Error as error:  # e.g. a field over the csv module's size limit (an unclosed quote)
        raise FormatError(path, line if reader else 1, f"unreadable CSV: {error}") from None


def _csv_delimiter(head: str) -> str:
    """The delimiter, sniffed from the file's first 8,192 characters: ASSISTments ships both comma and tab files."""
    return "\t" if head.count("\t") > head.count(",") else ","


def csv_header(path: Path) -> tuple[str, list[str]]:
    """A CSV file's delimiter and its header's names (stripped, lower-case), as its readers read them; the
    FormatError they would raise at the header."""
    table = _csv_table(path)
    try:
        names = next(table)[1]
    finally:
        table.close()
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return _csv_delimiter(handle.read(8192)), names


CSV_COLUMNS = ("learner", "item", "skill", "correct", "timestamp", "response_time", "id")
"""The columns ``read_csv`` reads (``learner, item, correct, timestamp`` required), in this order."""


def csv_positions(names: list[str]) -> list[int]:
    """Where each of CSV_COLUMNS sits in a header's names (the last of a repeated name, as a dict of the row
    would have it), -1 for one the header lacks."""
    where = {name: index for index, name in enumerate(names)}
    return [where.get(name, -1) for name in CSV_COLUMNS]


def csv_skills(text: str | None) -> tuple[str, ...]:
    """A ``skill`` field's skills: ``;``-separated, stripped, empty ones dropped."""
    return tuple(s.strip() for s in (text or "").split(";") if s.strip())


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str | None]]]:
    """The rows of ``_csv_table`` as dicts by the header's names (None for a field a short row lacks)."""
    table = _csv_table(path)
    _, names = next(table)
    for line, row in table:
        fields: dict[str, str | None] = dict(zip(names, row))
        for name in names[len(row) :]:
            fields[name] = None
        yield line, fields


def _require(path: Path, fields: Collection[str], names: Collection[str], *options: tuple[str, ...]) -> None:
    for option in options:
        if not any(name in fields for name in option):
            raise FormatError(path, 1, f"header needs one of {', '.join(option)}; has {', '.join(names)}")


def read_pybkt(path: Path) -> Iterator[Record]:
    """pyBKT / ASSISTments skill-builder CSV (comma or tab).

    Columns (pyBKT's defaults): ``user_id``, ``skill_name`` (or ``skill_id``),
    ``correct``, ``order_id``; optional ``problem_id`` (the item; else the skill is
    the item), ``start_time``/``timestamp``, ``ms_first_response``. ASSISTments
    repeats a multi-skill answer once per skill with the same ``order_id``: those
    rows are merged into one answer with several skills. Without a clock the
    ``order_id`` orders the answers (one second per id).
    """
    path = Path(path)
    pending: Record | None = None
    checked = False
    for line, row in _csv_rows(path):
        if not checked:
            checked = True
            _require(
                path,
                row,
                tuple(row),
                ("user_id",),
                ("skill_name", "skill_id"),
                ("correct",),
                ("order_id", "start_time", "timestamp"),
            )
        skill = (row.get("skill_name") or row.get("skill_id") or "").strip()
        if not skill:
            continue  # ASSISTments leaves the skill blank on untagged problems; pyBKT drops them too.
        learner = (row.get("user_id") or "").strip()
        if not learner:
            raise FormatError(path, line, "user_id is empty")
        clock = (row.get("start_time") or row.get("timestamp") or "").strip()
        order = (row.get("order_id") or "").strip()
        try:
            timestamp = parse_timestamp(clock) if clock else float(order)
        except ValueError:
            raise FormatError(path, line, f"cannot read time {clock or order!r}") from None
        response = (row.get("ms_first_response") or "").strip()
        try:
            response_time = float(response) / 1000.0 if response else None
        except ValueError:
            raise FormatError(path, line, f"ms_first_response must be a number, got {response!r}") from None
        if response_time is not None and response_time < 0:
            response_time = None  # ASSISTments logs some negative times (clock trouble): unknown, not an error
        record = Record(
            learner=learner,
            item=(row.get("problem_id") or "").strip() or skill,
            skills=(skill,),
            correct=_correct(path, line, (row.get("correct") or "").strip()),
            timestamp=timestamp,
            line=line,
            client_id=order or None,
            response_time=response_time,
            timed=bool(clock),
        )
        if pending is not None and order and pending.client_id == order and pending.learner == learner:
            if skill not in pending.skills:
                pending = Record(**{**pending.__dict__, "skills": pending.skills + (skill,)})
            continue
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending


def read_csv(path: Path) -> Iterator[Record]:
    """Plain CSV with header ``learner,item,skill,correct,timestamp``.

    ``skill`` may list several skills separated by ``;`` or be empty (the item is
    its own skill); optional ``id`` (client id) and ``response_time`` (seconds).
    """
    path = Path(path)
    table = _csv_table(path)
    _, names = next(table)
    # Each column by position; a column the header lacks, or a short row's missing field, reads as None.
    where = {name: index for index, name in enumerate(names)}
    columns = csv_positions(names)
    checked = False
    for line, row in table:
        if not checked:
            checked = True
            _require(path, where, tuple(where), ("learner",), ("item",), ("correct",), ("timestamp",))
        width = len(row)
        learner, item, skill, correct, moment, response, client_id = (
            row[index] if 0 <= index < width else None for index in columns
        )
        learner, item = (learner or "").strip(), (item or "").strip()
        if not learner or not item:
            raise FormatError(path, line, "learner and item must not be empty")
        skills = csv_skills(skill)
        try:
            timestamp = parse_timestamp(moment)  # type: ignore[arg-type] # None: a short row, refused below
        except (ValueError, AttributeError):
            raise FormatError(path, line, f"cannot read timestamp {moment!r}") from None
        response = (response or "").strip()
        try:
            response_time = float(response) if response else None
        except ValueError:
            raise FormatError(path, line, f"response_time must be a number, got {response!r}") from None
        yield Record(
            learner,
            item,
            skills,
            _correct(path, line, (correct or "").strip()),
            timestamp,
            line,
            client_id=(client_id or "").strip() or None,
            response_time=response_time,
        )


def read_dbe(path: Path) -> Iterator[Record]:
    """DBE-KT22 as preprocessed by pyedmine (``data.txt``): a header, then 5 lines a learner:
    user id, length, question ids, correctness, unix seconds.

    When ``question_id_map.csv`` lies beside the file, questions are named by their
    original DBE-KT22 ids (``q<id>``); when ``../raw/Question_KC_Relationships.csv``
    exists too, each question carries its knowledge components (``kc<id>``).
    """
    path = Path(path)
    item_name, item_skills = _dbe_vocabulary(path)
    lines = _read_lines(path)
    if not lines or not lines[0].startswith("user_id"):
        raise FormatError(path, 1, "expected the header 'user_id,seq_len;question_seq,correctness_seq,time_seq'")
    body = lines[1:]
    while body and not body[-1].strip():
        body.pop()
    if len(body) % 5:
        raise FormatError(path, len(lines), "file ends inside a record (expected 5 lines per learner)")
    for start in range(0, len(body), 5):
        number = start + 2
        learner = body[start].strip()
        length_text = body[start + 1].strip()
        if not learner.isdigit() or not length_text.isdigit():
            raise FormatError(path, number, "expected a user id line and a length line")
        length = int(length_text)
        questions = _ints(path, number + 2, body[start + 2], "question ids")
        answers = _ints(path, number + 3, body[start + 3], "correctness values")
        times = _ints(path, number + 4, body[start + 4], "timestamps")
        if not len(questions) == len(answers) == len(times) == length:
            raise FormatError(path, number + 1, f"length {length} does not match the sequences")
        for question, answer, moment in zip(questions, answers, times):
            item = item_name.get(question, question)
            yield Record(
                f"dbe:{learner}",
                item,
                tuple(item_skills.get(item, ())),
                _correct(path, number + 3, answer),
                float(moment),
                number + 2,
            )


def _dbe_vocabulary(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    item_name: dict[str, str] = {}
    item_skills: dict[str, list[str]] = {}
    question_map = path.parent / "question_id_map.csv"
    if question_map.exists():
        with question_map.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                item_name[row["mapped_id"].strip()] = f"q{row['original_id'].strip()}"
    links = path.parent.parent / "raw" / "Question_KC_Relationships.csv"
    if item_name and links.exists():
        with links.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                item_skills.setdefault(f"q{row['question_id'].strip()}", []).append(
                    f"kc{row['knowledgecomponent_id'].strip()}"
                )
    return item_name, item_skills


READERS = {"dkvmn": read_dkvmn, "pybkt": read_pybkt, "csv": read_csv, "dbe": read_dbe}


def read_records(path: Path | str, format: str) -> Iterator[Record]:
    try:
        reader = READERS[format]
    except KeyError:
        raise ValueError(f"unknown format {format!r}; known: {', '.join(FORMATS)}") from None
    return reader(Path(path))


def load_dataset(*files: Path | str, format: str) -> list[Dataset]:
    """Read files into Datasets sharing one item/skill vocabulary (e.g. a train and a test file)."""
    per_file = [list(read_records(f, format)) for f in files]
    item_skills: dict[str, tuple[str, ...]] = {}
    for records in per_file:
        for record in records:
            if record.skills:
                item_skills.setdefault(record.item, record.skills)
    items = sorted({r.item for records in per_file for r in records}, key=_natural)
    skills = sorted({s for item in items for s in item_skills.get(item, (item,))}, key=_natural)
    has_time = all(r.timed for records in per_file for r in records[:1])
    return [
        dataset_from_records(
            ((r.learner, r.item, r.correct, r.timestamp) for r in records),
            item_skills=item_skills,
            item_ids=items,
            skill_ids=skills,
            has_time=has_time,
        )
        for records in per_file
    ]


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)
