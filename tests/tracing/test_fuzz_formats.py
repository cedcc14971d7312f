"""Fuzzing the file parsers: any input either parses or raises a clean FormatError naming a line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracing.formats import READERS, FormatError, Record

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Tokens the parsers branch on, so examples reach past the first check of each format.
TOKENS = [
    "0",
    "1",
    "2",
    "3",
    "10",
    "-1",
    "0.5",
    "1.5",
    "nan",
    "inf",
    "1e309",
    "",
    " ",
    ",",
    ";",
    "\t",
    "a",
    "é",
    "\x00",
    "\ufeff",
    '"',
    "1700000000",
    "1700000000000",
    "2026-01-01T00:00:00Z",
    "2026-13-01",
    "99999999999999999999",
]
HEADERS = {
    "csv": [
        "learner,item,skill,correct,timestamp",
        "learner,item,skill,correct,timestamp,id,response_time",
        "learner\titem\tcorrect\ttimestamp",
        "item,correct",
    ],
    "pybkt": [
        "user_id,skill_name,correct,order_id",
        "user_id,skill_id,problem_id,correct,start_time,ms_first_response",
        "user_id\tskill_name\tcorrect\torder_id",
        "user_id,correct",
    ],
    "dbe": ["user_id,seq_len;question_seq,correctness_seq,time_seq"],
    "dkvmn": [""],
}


def _line(tokens: list[str]) -> str:
    return ",".join(tokens)


def _document(format: str):
    header = st.sampled_from(HEADERS[format])
    line = st.lists(st.sampled_from(TOKENS), max_size=8).map(_line)
    body = st.lists(line, max_size=16).map("\n".join)
    return st.tuples(header, body).map(lambda pair: (pair[0] + "\n" + pair[1]) if pair[0] else pair[1])


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _parse(reader, path: Path) -> list[Record]:
    try:
        records = list(reader(path))
    except FormatError as error:
        assert error.line >= 0 and error.reason and str(path) in str(error)
        return []
    for record in records:
        assert 0.0 <= record.correct <= 1.0
        assert record.learner and record.item
    return records


@pytest.mark.parametrize("format", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_structured_garbage_parses_or_fails_cleanly(scratch, format, data):
    path = scratch / f"structured-{format}.txt"
    path.write_text(data.draw(_document(format)), encoding="utf-8")
    _parse(READERS[format], path)


@pytest.mark.parametrize("format", sorted(READERS))
@FUZZ
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_fail_cleanly(scratch, format, content):
    path = scratch / f"bytes-{format}.txt"
    path.write_bytes(content)
    _parse(READERS[format], path)


@pytest.mark.parametrize("format", sorted(READERS))
def test_a_well_formed_file_still_parses(scratch, format):
    """The fuzz targets must be reachable: each format has an input that yields records."""
    documents = {
        "csv": "learner,item,skill,correct,timestamp\nu1,q1,s1,1,1700000000\n",
        "pybkt": "user_id,skill_name,correct,order_id\nu1,s1,1,10\n",
        "dbe": "user_id,seq_len;question_seq,correctness_seq,time_seq\n1\n2\n5,6\n1,0\n1700000000,1700000005\n",
        "dkvmn": "2\n5,6\n1,0\n",
    }
    path = scratch / f"good-{format}.txt"
    path.write_text(documents[format], encoding="utf-8")
    assert _parse(READERS[format], path)


@pytest.mark.parametrize("format", ["csv", "pybkt"])
def test_an_unclosed_quote_over_the_field_limit_is_a_format_error(scratch, format):
    header = HEADERS[format][0]
    path = scratch / f"unclosed-{format}.txt"
    path.write_text(header + '\n"' + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match="unreadable CSV"):
        list(READERS[format](path))
