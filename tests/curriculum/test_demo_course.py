"""The shipped demo course: well formed, correct answers, a real prerequisite DAG, reproducible.

Pure checks on curriculum/demo/arithmetic.json and its generator; no database.
Answers are re-derived here from the question text with an independent
parser, so a generator bug cannot vouch for itself.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import math
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from curriculum.answers import ANSWER_FORMATS, assess_answer, parse_number

DEMO = Path(__file__).resolve().parents[2] / "curriculum" / "demo"
DOCUMENT_PATH = DEMO / "arithmetic.json"
GENERATOR_PATH = DEMO / "build_arithmetic.py"
PLACES = {"ones": 0, "tens": 1, "hundreds": 2, "thousands": 3, "ten thousands": 4, "hundred thousands": 5}
DECIMAL_PLACES = {"tenths": 1, "hundredths": 2, "thousandths": 3}


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("build_arithmetic", GENERATOR_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def value(text: str) -> Fraction:
    parsed = parse_number(text)
    assert parsed is not None, text
    return parsed.value


def test_committed_json_is_the_generator_output_byte_for_byte(generator) -> None:
    first = generator.render(generator.build_document())
    assert first == DOCUMENT_PATH.read_text(encoding="utf-8")
    assert generator.render(generator.build_document()) == first


def test_generator_cli_check_runs_without_django(tmp_path: Path) -> None:
    # Runs the script as its own __main__ and reports whether anything pulled Django in.
    probe = "\n".join(
        [
            "import runpy, sys",
            f"sys.argv = [{str(GENERATOR_PATH)!r}, '--check']",
            "try:",
            "    runpy.run_path(sys.argv[0], run_name='__main__')",
            "except SystemExit as stop:",
            "    code = stop.code",
            "sys.exit(3 if 'django' in sys.modules else code)",
        ]
    )
    assert subprocess.run([sys.executable, "-c", probe], cwd=tmp_path).returncode == 0
    stale = tmp_path / "stale.json"
    stale.write_text("{}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(GENERATOR_PATH), "--check", "--output", str(stale)], capture_output=True, text=True
    )
    assert result.returncode == 1 and "stale" in result.stderr


def test_course_size(document: dict) -> None:
    items = document["items"]
    assert document["course"] == {"id": "arithmetic", "name": "Arithmetic: from place value to fractions"}
    assert len(document["skills"]) >= 14
    assert len(items) >= 180
    assert 18 <= len(document["prerequisites"]) <= 32
    multiple_choice = sum(item["choices"] is not None for item in items)
    assert 0.15 <= multiple_choice / len(items) <= 0.4
    assert sum(len(item["skills"]) > 1 for item in items) >= 5


def test_every_skill_has_ten_items_at_several_difficulties(document: dict) -> None:
    by_skill = collections.defaultdict(list)
    for item in document["items"]:
        by_skill[item["skills"][0]].append(item)
    for skill in document["skills"]:
        items = by_skill[skill["id"]]
        assert len(items) >= 10, skill["id"]
        assert {item["difficulty"] for item in items} == {1, 2, 3}, skill["id"]
        assert any(item["choices"] is None for item in items), skill["id"]


def test_ids_are_unique_and_readable(document: dict) -> None:
    skill_ids = [skill["id"] for skill in document["skills"]]
    item_ids = [item["id"] for item in document["items"]]
    assert len(set(skill_ids)) == len(skill_ids)
    assert len(set(item_ids)) == len(item_ids)
    for skill_id in skill_ids:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", skill_id), skill_id
    for item in document["items"]:
        assert re.fullmatch(re.escape(item["skills"][0]) + r"-\d{2}", item["id"]), item["id"]


def test_items_are_well_formed(document: dict) -> None:
    skill_ids = {skill["id"] for skill in document["skills"]}
    seen_questions = set()
    for item in document["items"]:
        assert set(item) <= {"id", "skills", "body", "answer", "choices", "explanation", "difficulty", "answer_format"}
        assert item["skills"] and len(set(item["skills"])) == len(item["skills"])
        assert set(item["skills"]) <= skill_ids, item["id"]
        assert item["difficulty"] in (1, 2, 3)
        body, explanation = item["body"], item["explanation"]
        assert body.strip() == body and ("?" in body or body.endswith(".")) and "\n" not in body, item["id"]
        assert 0 < len(explanation) <= 250 and explanation.endswith(".") and "\n" not in explanation, item["id"]
        assert item["answer"].strip() == item["answer"] and item["answer"]
        assert item.get("answer_format") in ANSWER_FORMATS | {None}
        question = (body, tuple(sorted(item["choices"] or ())))
        assert question not in seen_questions, item["id"]
        seen_questions.add(question)


def test_multiple_choice_items_hold_their_answer_exactly_once(document: dict) -> None:
    for item in document["items"]:
        choices = item["choices"]
        if choices is None:
            continue
        assert 3 <= len(choices) <= 5, item["id"]
        assert choices.count(item["answer"]) == 1, item["id"]
        assert len(set(choices)) == len(choices), item["id"]
        assert "answer_format" not in item, item["id"]
        numbers = [parse_number(choice) for choice in choices]
        if "simplest form" not in item["body"] and all(numbers):
            # Another choice worth the same would also be right.
            answer = value(item["answer"])
            assert sum(number.value == answer for number in numbers) == 1, item["id"]


def test_every_answer_passes_the_checker_and_near_misses_do_not(document: dict) -> None:
    for item in document["items"]:
        options = {"choices": item["choices"], "answer_format": item.get("answer_format")}
        assert assess_answer(item["answer"], item["answer"], **options).correct, item["id"]
        assert assess_answer(item["answer"], f"  {item['answer']} ", **options).correct, item["id"]
        if item["choices"] is not None:
            for choice in item["choices"]:
                assert assess_answer(item["answer"], choice, **options).correct == (choice == item["answer"]), item[
                    "id"
                ]
        elif (number := parse_number(item["answer"])) is not None:
            assert not assess_answer(item["answer"], str(number.value + 1), **options).correct, item["id"]
            assert not assess_answer(item["answer"], str(number.value + Fraction(1, 7)), **options).correct, item["id"]
        else:
            assert item["answer"] in {"<", ">", "="}, item["id"]


def test_prerequisites_form_a_dag_over_known_skills(document: dict) -> None:
    skills = [skill["id"] for skill in document["skills"]]
    edges = [(edge["from"], edge["to"]) for edge in document["prerequisites"]]
    assert len(set(edges)) == len(edges)
    for source, target in edges:
        assert source in skills and target in skills and source != target
    successors = collections.defaultdict(set)
    indegree = dict.fromkeys(skills, 0)
    for source, target in edges:
        successors[source].add(target)
        indegree[target] += 1
    ready = [skill for skill, count in indegree.items() if count == 0]
    ordered = []
    while ready:
        skill = ready.pop()
        ordered.append(skill)
        for target in successors[skill]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    assert len(ordered) == len(skills), "prerequisite graph has a cycle"
    assert {skill for skill in skills if not any(skill in edge for edge in edges)} == set()
    assert [skill for skill in skills if not any(target == skill for _, target in edges)] == ["place-value"]

    # Every edge says something the others do not (the graph is its own transitive reduction).
    for source, target in edges:
        others = {edge for edge in edges if edge != (source, target)}
        adjacency = collections.defaultdict(set)
        for a, b in others:
            adjacency[a].add(b)
        seen, stack = set(), [source]
        while stack:
            for nxt in adjacency[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        assert target not in seen, (source, target)


def test_prerequisites_respect_item_order(document: dict) -> None:
    position = {skill["id"]: index for index, skill in enumerate(document["skills"])}
    for edge in document["prerequisites"]:
        assert position[edge["from"]] < position[edge["to"]], edge


# --- answers re-derived from the question text -----------------------------------------------

NUMBER = r"\d[\d,]*(?:\.\d+)?|\d+/\d+|\d+ \d+/\d+"


def _digit(number_text: str, place: str) -> int:
    if place in DECIMAL_PLACES:
        return int(number_text.split(".")[1][DECIMAL_PLACES[place] - 1])
    return int(number_text.replace(",", "")) // 10 ** PLACES[place] % 10


def _single(choices: list[str], predicate) -> str:
    matching = [choice for choice in choices if predicate(choice)]
    assert len(matching) == 1, (choices, matching)
    return matching[0]


def _operate(left: Fraction, operator: str, right: Fraction) -> Fraction:
    return {"+": left + right, "-": left - right, "×": left * right, "÷": left / right}[operator]


def derive(item: dict) -> tuple[str, str | None] | None:
    """(an answer computed from the body, the exact text it must be when it must match a choice); None if no rule."""
    body, choices = item["body"], item["choices"]
    rules = [
        (rf"({NUMBER}) ([-+×÷]) ({NUMBER}) = \?", lambda m: str(_operate(value(m[1]), m[2], value(m[3])))),
        (r"Fill in the missing number: (\d+) × \? = (\d+)", lambda m: str(value(m[2]) / value(m[1]))),
        (r"Fill in the missing number: (\d+/\d+) = \?/(\d+)", lambda m: str(value(m[1]) * int(m[2]))),
        (r"Fill in the missing number: (\d+/\d+) = (\d+)/\?", lambda m: str(int(m[2]) / value(m[1]))),
        (
            rf"Which symbol makes this true: ({NUMBER}) \? ({NUMBER}) \(answer <, > or =\)",
            lambda m: "<" if value(m[1]) < value(m[2]) else ">" if value(m[1]) > value(m[2]) else "=",
        ),
        (r"What digit is in the ([a-z ]+) place of ([\d,.]+)\?", lambda m: str(_digit(m[2], m[1]))),
        (
            r"What is the value of the digit (\d) in ([\d,]+)\?",
            lambda m: str(int(m[1]) * 10 ** (len(m[2].replace(",", "")) - 1 - m[2].replace(",", "").index(m[1]))),
        ),
        (r"What is the greatest common factor of (\d+) and (\d+)\?", lambda m: str(math.gcd(int(m[1]), int(m[2])))),
        (r"What is the least common multiple of (\d+) and (\d+)\?", lambda m: str(math.lcm(int(m[1]), int(m[2])))),
        (
            r"What is the least common denominator of \d+/(\d+) and \d+/(\d+)\?",
            lambda m: str(math.lcm(int(m[1]), int(m[2]))),
        ),
        (
            r"What is the smallest multiple of (\d+) that is greater than (\d+)\?",
            lambda m: str((int(m[2]) // int(m[1]) + 1) * int(m[1])),
        ),
        (r"What is the remainder when (\d+) is divided by (\d+)\?", lambda m: str(int(m[1]) % int(m[2]))),
        (
            r"How many factors does (\d+) have \(count 1 and \d+ too\)\?",
            lambda m: str(sum(int(m[1]) % d == 0 for d in range(1, int(m[1]) + 1))),
        ),
        (r"What is (\d+/\d+) of (\d+)\?", lambda m: str(value(m[1]) * int(m[2]))),
        (r"Write (\d+/\d+) in simplest form\.", lambda m: str(value(m[1]))),
        (
            r"Write ([\d. /]+) as (?:a mixed number|an improper fraction|a decimal|a fraction in simplest form)\.",
            lambda m: str(value(m[1])),
        ),
        (
            r"What number has (.+)\?",
            lambda m: str(
                sum(
                    int(count)
                    * 10
                    ** PLACES[
                        {
                            "one": "ones",
                            "ten": "tens",
                            "hundred": "hundreds",
                            "thousand": "thousands",
                            "ten thousand": "ten thousands",
                        }.get(place, place)
                    ]
                    for count, place in re.findall(r"(\d+) ([a-z ]+?)(?:,| and|$)", m[1])
                )
            ),
        ),
        (
            r"(\d+) pupils go on a trip in minibuses that seat (\d+) pupils each\..*",
            lambda m: str(-(-int(m[1]) // int(m[2]))),
        ),
        (r"(\d+) apples are shared equally among (\d+) baskets\..*", lambda m: str(int(m[1]) // int(m[2]))),
        (r"A crate holds (\d+) bottles\. How many bottles are in (\d+) crates\?", lambda m: str(int(m[1]) * int(m[2]))),
    ]
    choice_rules = [
        (
            r"Which of these (?:numbers|fractions|decimals) is the (greatest|smallest)\?",
            lambda m: (max if m[1] == "greatest" else min)(choices, key=value),
        ),
        (
            r"Which of these numbers is a factor of (\d+)\?",
            lambda m: _single(choices, lambda c: int(m[1]) % int(c) == 0),
        ),
        (
            r"Which of these numbers is a multiple of (\d+)\?",
            lambda m: _single(choices, lambda c: int(c) % int(m[1]) == 0),
        ),
        (r"Which fraction is equivalent to (\d+/\d+)\?", lambda m: _single(choices, lambda c: value(c) == value(m[1]))),
        (
            r"Which is (\d+/\d+) in simplest form\?",
            lambda m: _single(choices, lambda c: value(c) == value(m[1]) and math.gcd(*map(int, c.split("/"))) == 1),
        ),
        (r"Which mixed number equals (\d+/\d+)\?", lambda m: _single(choices, lambda c: value(c) == value(m[1]))),
        (
            r"Which number has the digit (\d) in the ([a-z ]+) place\?",
            lambda m: _single(choices, lambda c: _digit(c, m[2]) == int(m[1])),
        ),
    ]
    if choices is not None:
        for pattern, rule in choice_rules:
            if match := re.fullmatch(pattern, body):
                chosen = rule(match)
                return chosen, chosen
    for pattern, rule in rules:
        if match := re.fullmatch(pattern, body):
            return rule(match), None
    return None


def test_answers_match_values_recomputed_from_the_question(document: dict) -> None:
    derived = 0
    for item in document["items"]:
        result = derive(item)
        if result is None:
            continue
        computed, exact = result
        derived += 1
        if exact is not None:
            assert item["answer"] == exact, (item["id"], exact)
        else:
            assert assess_answer(item["answer"], computed).correct, (item["id"], item["body"], computed)
    # The rules must keep covering the course, or this test would quietly check nothing.
    assert derived >= 0.8 * len(document["items"])


def test_format_marked_answers_are_written_in_that_form(document: dict) -> None:
    formats = collections.Counter(item.get("answer_format") for item in document["items"])
    assert formats["simplest"] >= 10 and formats["mixed"] >= 3 and formats["fraction"] >= 3 and formats["decimal"] >= 3
    for item in document["items"]:
        answer_format = item.get("answer_format")
        if answer_format is None:
            continue
        number = parse_number(item["answer"])
        assert number is not None, item["id"]
        if answer_format == "simplest":
            assert "simplest form" in item["body"], item["id"]
            assert not assess_answer(
                item["answer"],
                f"{number.value.numerator * 2}/{number.value.denominator * 2}",
                answer_format=answer_format,
            ).correct, item["id"]
        if answer_format == "mixed":
            assert number.form == "mixed" and "mixed number" in item["body"], item["id"]
            assert not assess_answer(item["answer"], str(number.value), answer_format=answer_format).correct, item["id"]
        if answer_format == "fraction":
            assert number.form == "fraction" and "improper fraction" in item["body"], item["id"]
        if answer_format == "decimal":
            assert number.form in ("decimal", "integer") and "as a decimal" in item["body"], item["id"]
