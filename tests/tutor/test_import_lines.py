"""Issue 18: the ``csv`` import's lines checked in SQL (``tutor.importing._lines_staged``, PostgreSQL) against the
Python reader it falls back to: on random files, good and bad, both store the same rows, learners, items,
skills and sums, or both stop at the same ``file:line: reason``. ``TUTOR_IMPORT_COMPARE`` sets how many
files (150 by default; the README's figure is from a larger run)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone as django_timezone

import tutor.importing as importing
from curriculum.models import Item, Skill
from tracing.formats import FormatError
from tutor.importing import file_import
from tutor.models import Interaction, Learner, LearnerActivity

pytestmark = pytest.mark.django_db

FILES = int(os.environ.get("TUTOR_IMPORT_COMPARE", "150"))

# Values each column takes: first the ones a good file has, then the odd ones (some good for the reader,
# most not), which files with anomalies draw from.
GOOD = {
    "learner": ["u1", "u2", "u3", " u4 ", "ü5", "u6", "a\x01b", "Ω"],
    "item": ["i1", "i2", "i3", " i4", "ï5", "i6"],
    "skill": ["s1", "s1;s2", "", " s3 ; ", ";", "s2", "ß"],
    "correct": ["0", "1", "0.5", " 1 ", "1.0", ".5", "1.", "00.25", "0.3333333333333333333", "0.1"],
    "timestamp": ["1600000000", "1600000123", "1600000000123", " 1600000456 ", "0001600000000", "1"],
    "response_time": ["", "1.5", "0", " 2 ", "31622400", "0.001"],
    "id": ["", "a1", "a2", "a3", " a4 ", "", ""],
    "extra": ["x", "", "yz", "\\", "ā"],
}
ODD = {
    "learner": ["", " ", "x" * 201, "u\u00a07", "u\x0b8", "u\t9", '"u10"', 'u"11', "u\u30002"],
    "item": ["", "y" * 201, "i\u20037", '"i,8"'],
    "skill": ["s" * 201, "t" * 150 + ";" + "t" * 60, "s\x1c"],
    "correct": ["2", "-0", "nan", "1e0", "", "1_0", "0x1p-1", "inf", "1e-400", "9" * 30, " ", "+1", "-1"],
    "timestamp": [
        "1600000000.5",
        "2020-01-01T00:00:00Z",
        "",
        "-5",
        "99999999999999",
        "4102444800000",
        "1e9",
        "4102444800",
        "0x10",
        "1_600_000_000",
    ],
    "response_time": ["-1", "40000000", "abc", "1e3", "nan"],
    "id": ["z" * 201, "a1", "a2"],
    "extra": ['q"uote', "x" * 140_000, "\x00", "\\.", "\r"],
}
HEADERS = [
    ["learner", "item", "skill", "correct", "timestamp"],
    ["learner", "item", "skill", "correct", "timestamp", "id", "response_time"],
    ["id", "timestamp", "correct", "item", "learner"],
    ["learner", "item", "correct", "timestamp", "extra"],
    ["Learner ", " ITEM", "skill", "correct", "timestamp", "response_time"],
    ["learner", "item", "skill", "correct", "timestamp", "item"],
    ["learner", "item", "skill", "correct"],
]


def random_file(rng: random.Random) -> bytes:
    """A csv file: a header from HEADERS, comma or tab, up to 40 lines; half the files good, half with a few
    anomalies (odd values, quotes, blank lines, short and long rows, bad bytes, mixed line ends)."""
    names = rng.choice(HEADERS)
    delimiter = "\t" if rng.random() < 0.2 else ","
    odd = rng.random() < 0.5
    rows = []
    for _ in range(rng.randint(0, 40)):
        fields = []
        for name in names:
            column = name.strip().lower()
            pool = ODD[column] if odd and rng.random() < 0.04 else GOOD[column]
            fields.append(rng.choice(pool))
        if odd and rng.random() < 0.03:
            fields.append("more")
        if odd and rng.random() < 0.03:
            fields.pop()
        line = delimiter.join(fields)
        if odd and rng.random() < 0.03:
            line = ""
        rows.append(line)
    end = "\r\n" if rng.random() < 0.2 else "\n"
    text = end.join([delimiter.join(names), *rows]) + rng.choice([end, "", end + end, end + "\n"])
    if rng.random() < 0.1:
        text = "\ufeff" + text
    data = text.encode("utf-8")
    if odd and rng.random() < 0.05:
        cut = rng.randrange(len(data))
        data = data[:cut] + rng.choice([b"\xff", b"\r", b"\n", b"\x00"]) + data[cut:]
    return data


def stored() -> dict[str, Any]:
    """What the import left, by names (and in the order of the primary keys)."""
    return {
        "answers": list(
            Interaction.objects.order_by("id").values_list(
                "course__slug",
                "learner__external_id",
                "item__external_id",
                "correct",
                "timestamp",
                "response_time",
                "client_id",
                "response",
            )
        ),
        "learners": list(Learner.objects.order_by("id").values_list("course__slug", "external_id")),
        "items": [
            (item.course.slug, item.external_id, sorted(item.skills.values_list("external_id", flat=True)))
            for item in Item.objects.order_by("id").select_related("course")
        ],
        "skills": list(Skill.objects.order_by("id").values_list("course__slug", "external_id", "name")),
        "sums": list(
            LearnerActivity.objects.order_by("learner__external_id").values_list(
                "learner__external_id", "answers", "correct", "last_timestamp", "mastery_pending"
            )
        ),
    }


def outcome(path: Path) -> tuple[str, Any]:
    """The import of ``path`` into course ``c`` (on top of course ``c``'s earlier answers), rolled back."""
    sid = transaction.savepoint()
    try:
        try:
            with transaction.atomic():
                summary, _ = file_import(course_slug="c", path=path, format="csv")
        except FormatError as error:
            return "error", str(error)
        return "stored", (summary, stored())
    finally:
        transaction.savepoint_rollback(sid)


def test_lines_checked_in_sql_import_as_the_python_reader(tmp_path, postgresql, monkeypatch):
    moment = django_timezone.now()
    monkeypatch.setattr(django_timezone, "now", lambda: moment)  # the bounds' "now" in both runs' messages
    rng = random.Random(18)
    taken = {"sql": 0}
    lines_staged = importing._lines_staged

    def counted(*args: Any, **kwargs: Any) -> Any:
        yield from lines_staged(*args, **kwargs)
        taken["sql"] += 1

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise importing._Unusual
        yield

    base = tmp_path / "base.csv"
    base.write_text("learner,item,skill,correct,timestamp,id\nu1,i1,s1,1,1600000000,a1\nu9,i2,s2,0,1600000001,\n")
    kinds = {"stored": 0, "error": 0}
    for number in range(FILES):
        path = tmp_path / f"f{number}.csv"
        path.write_bytes(random_file(rng))
        monkeypatch.setattr(importing, "CHUNK_ROWS", rng.choice([3, 7, 100_000]))
        sid = transaction.savepoint()
        if rng.random() < 0.3:  # a course with answers already, some of them the file's
            monkeypatch.setattr(importing, "_lines_staged", refused)
            with transaction.atomic():
                file_import(course_slug="c", path=base, format="csv")
        monkeypatch.setattr(importing, "_lines_staged", refused)
        expected = outcome(path)
        monkeypatch.setattr(importing, "_lines_staged", counted)
        found = outcome(path)
        transaction.savepoint_rollback(sid)
        assert found == expected, (number, path.read_bytes()[:2000])
        kinds[expected[0]] += 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_nestloop")
        assert cursor.fetchone()[0] == "on"
    # Both kinds were compared, and SQL took a good share of the files it could (the rest fell back).
    assert kinds["stored"] > FILES // 5 and kinds["error"] > FILES // 5, kinds
    assert taken["sql"] > FILES // 5, (taken, kinds)


@pytest.mark.parametrize("extra", [60, 2000])
def test_a_header_of_many_columns_imports_as_the_reader_reads_it(tmp_path, postgresql, extra):
    """The reader ignores columns it does not read; the lines' table has one per column, and PostgreSQL
    refuses a table of over 1,600 (failed before the width bound: TooManyColumns, a crash, not a file's
    error), so a wide header goes to the reader."""
    path = tmp_path / "wide.csv"
    names = ["learner", "item", "correct", "timestamp", *(f"x{n}" for n in range(extra))]
    path.write_text(",".join(names) + "\n" + ",".join(["u1", "i1", "1", "1600000000", *[""] * extra]) + "\n")
    kind, (summary, rows) = outcome(path)
    assert kind == "stored" and summary["created"] == 1
    assert [answer[1:4] for answer in rows["answers"]] == [("u1", "i1", 1.0)]


def test_the_odd_characters_are_all_that_str_strip_strips_but_spaces():
    """The lines checked in SQL strip fields of spaces (btrim); the reader strips what ``str.isspace`` calls
    whitespace. Every other such character (line ends and, where it does not separate, tab aside) leaves
    the grammar, so both strip the same."""
    spaces = [chr(code) for code in range(0x110000) if chr(code).isspace()]
    left = [
        character
        for character in spaces
        if character not in " \t\r\n"
        and not (character.isascii() and character.encode() in importing._ODD_BYTES)
        and not importing._ODD_SPACES.fullmatch(character)
    ]
    assert left == []
