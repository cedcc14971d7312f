"""The pure answer checker: the forms a learner types, the forms an item asks for, and garbage."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from curriculum.answers import (
    MAX_RESPONSE_LENGTH,
    AnswerCheck,
    assess_answer,
    normalise_text,
    parse_number,
)


@pytest.mark.parametrize(
    ("expected", "response"),
    [
        ("5/6", "5/6"),
        ("5/6", " 5 / 6 "),
        ("5/6", "\t5/ 6\n"),
        ("5/6", "10/12"),
        ("5/6", "5\u20446"),
        ("1000", "1,000"),
        ("1000", " 1000 "),
        ("1234567", "1,234,567"),
        ("87111", "87,111"),
        ("0.5", ".5"),
        ("0.5", "0.50"),
        ("0.5", "1/2"),
        ("2.3", "2.30"),
        ("7", "7.0"),
        ("7", "7."),
        ("7", "+7"),
        ("3/2", "1 1/2"),
        ("3/2", "1.5"),
        ("17/12", "1 5/12"),
        ("1", "4/4"),
        ("2 3/4", "11/4"),
        (">", " > "),
        ("yes", "YES"),
    ],
)
def test_equivalent_forms_are_accepted(expected: str, response: str) -> None:
    assert assess_answer(expected, response).correct


@pytest.mark.parametrize(
    ("expected", "response"),
    [
        ("5/6", "6/5"),
        ("5/6", "5/7"),
        ("5/6", "0.83"),
        ("1000", "100"),
        ("1000", "10,00"),
        ("1000", "1,0000"),
        ("0.5", "5"),
        ("0.5", "0.05"),
        ("3/2", "1 2/3"),
        ("3/2", "-3/2"),
        ("7", "-7"),
        (">", "<"),
        (">", "="),
        ("yes", "no"),
        ("12", "1 2"),
    ],
)
def test_wrong_answers_are_rejected(expected: str, response: str) -> None:
    assert not assess_answer(expected, response).correct


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "abc",
        "5/",
        "/6",
        "5//6",
        "5/0",
        "1 5/0",
        "1 7/4",
        "nan",
        "inf",
        "-inf",
        "1e3",
        "0x10",
        "1_000",
        "5/6/7",
        "..5",
        "1,00.5",
        "½",
        "2 + 3",
        "5 apples",
        "None",
        "\x00",
        "\u202e5/6",
        "9" * 31,
        "9" * 10_000,
        "1" + "," * 5_000,
        "1/" + "2" * 200,
    ],
)
def test_garbage_is_rejected_without_raising(response: str) -> None:
    for expected in ("5/6", "7", "0.5", "2 3/4", ">"):
        result = assess_answer(expected, response)
        assert not result.correct
        assert isinstance(result, AnswerCheck)
    assert not assess_answer("5/6", response, choices=["5/6", "1/6", "2/3"]).correct


@pytest.mark.parametrize("response", [None, 56, 5.0, b"5/6", ["5/6"]])
def test_non_string_responses_are_rejected(response: object) -> None:
    assert not assess_answer("5/6", response).correct  # type: ignore[arg-type]


def test_overlong_responses_are_rejected_even_when_they_would_parse() -> None:
    padded = " " * MAX_RESPONSE_LENGTH + "7"
    assert normalise_text(padded) == "7"
    assert assess_answer("7", padded) == AnswerCheck(False, "unreadable")
    assert assess_answer("7", padded[-MAX_RESPONSE_LENGTH:]).correct


def test_simplest_form_is_required_only_when_the_item_asks() -> None:
    assert assess_answer("2/3", "4/6").correct
    assert assess_answer("2/3", "4/6", answer_format="simplest") == AnswerCheck(False, "wrong_form")
    assert assess_answer("2/3", " 2 / 3 ", answer_format="simplest").correct
    assert assess_answer("17/9", "17/9", answer_format="simplest").correct
    assert not assess_answer("17/9", "1 8/9", answer_format="simplest").correct
    assert not assess_answer("2/3", "0.666", answer_format="simplest").correct
    assert assess_answer("2", "2", answer_format="simplest").correct
    assert not assess_answer("2", "2/1", answer_format="simplest").correct
    assert not assess_answer("2", "4/2", answer_format="simplest").correct
    assert assess_answer("2/3", "3/4", answer_format="simplest").reason == "wrong"


def test_mixed_number_form() -> None:
    assert assess_answer("2 3/4", "2 3/4", answer_format="mixed").correct
    assert assess_answer("2 3/4", "  2   3/4 ", answer_format="mixed").correct
    assert assess_answer("2 3/4", "11/4", answer_format="mixed").reason == "wrong_form"
    assert not assess_answer("2 3/4", "2.75", answer_format="mixed").correct
    assert not assess_answer("2 1/2", "2 2/4", answer_format="mixed").correct
    assert assess_answer("3", "3", answer_format="mixed").correct
    assert assess_answer("1/2", "1/2", answer_format="mixed").correct
    assert not assess_answer("1/2", "2/4", answer_format="mixed").correct


def test_improper_fraction_form() -> None:
    assert assess_answer("11/4", "11/4", answer_format="fraction").correct
    assert assess_answer("11/4", "22/8", answer_format="fraction").correct
    assert assess_answer("11/4", "2 3/4", answer_format="fraction").reason == "wrong_form"
    assert not assess_answer("11/4", "2.75", answer_format="fraction").correct


def test_decimal_form() -> None:
    assert assess_answer("0.15", ".15", answer_format="decimal").correct
    assert assess_answer("0.15", "0.150", answer_format="decimal").correct
    assert assess_answer("4", "4", answer_format="decimal").correct
    assert assess_answer("0.15", "3/20", answer_format="decimal").reason == "wrong_form"
    assert assess_answer("0.15", "0.16", answer_format="decimal").reason == "wrong"


def test_an_empty_answer_format_means_none() -> None:
    assert assess_answer("2/3", "4/6", answer_format="").correct


def test_unknown_answer_format_is_an_authoring_error() -> None:
    with pytest.raises(ValueError, match="answer_format"):
        assess_answer("1/2", "1/2", answer_format="lowest")


def test_multiple_choice_compares_the_chosen_text() -> None:
    choices = ["3 1/4", "13/4", "2 1/4", "4 1/4"]
    assert assess_answer("3 1/4", "3 1/4", choices=choices).correct
    assert assess_answer("3 1/4", " 3   1/4 ", choices=choices).correct
    # An equal value that is another choice, or no choice at all, is not the chosen answer.
    assert assess_answer("3 1/4", "13/4", choices=choices) == AnswerCheck(False, "wrong")
    assert assess_answer("3 1/4", "3.25", choices=choices) == AnswerCheck(False, "not_a_choice")
    assert assess_answer("3 1/4", "", choices=choices) == AnswerCheck(False, "unreadable")
    assert not assess_answer("<", "less", choices=["<", ">", "="]).correct
    assert assess_answer("<", "<", choices=["<", ">", "="]).correct
    assert not assess_answer("34,759", "34759", choices=["34,759", "74,512"]).correct


def test_reasons_tell_wrong_from_unreadable() -> None:
    assert assess_answer("5/6", "5/6") == AnswerCheck(True, "correct")
    assert assess_answer("5/6", "4/6") == AnswerCheck(False, "wrong")
    assert assess_answer("5/6", "five sixths") == AnswerCheck(False, "unreadable")
    assert bool(assess_answer("5/6", "10/12")) is True


def test_parse_number_reports_the_written_form() -> None:
    assert parse_number("1,234") == parse_number("1234")
    assert parse_number("1,234").form == "integer"
    assert parse_number(".25").value == Fraction(1, 4)
    assert parse_number("6/8").numerator == 6
    assert parse_number("2 6/8").value == Fraction(11, 4)
    assert parse_number("2 6/8").form == "mixed"
    assert parse_number("-1 1/2").value == Fraction(-3, 2)
    assert parse_number("12,34") is None


def test_random_rationals_round_trip_through_every_written_form() -> None:
    rng = random.Random(7)
    for _ in range(300):
        value = Fraction(rng.randint(1, 500), rng.choice([1, 2, 3, 4, 5, 8, 10, 12, 25, 100]))
        canonical = str(value)
        whole, remainder = divmod(value.numerator, value.denominator)
        scale = rng.randint(2, 9)
        forms = [f"{value.numerator * scale}/{value.denominator * scale}", f" {canonical} "]
        if remainder and whole:
            forms.append(f"{whole} {remainder}/{value.denominator}")
        if 10**6 % value.denominator == 0:
            forms.append(f"{float(value):,.6f}")
        for form in forms:
            assert assess_answer(canonical, form).correct, (canonical, form)
        assert not assess_answer(canonical, str(value + Fraction(1, value.denominator * 7))).correct
