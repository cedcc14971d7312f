"""Checking a learner's typed or chosen answer against an item's canonical answer (pure).

An item's ``answer`` is a canonical string. A learner may type the same value in
another form, and the checker accepts the forms a learner would reasonably type:

* surrounding and inner spaces: ``" 5 / 6 "`` equals ``"5/6"``;
* whole numbers with thousands separators: ``"1,000"`` equals ``"1000"`` (the
  groups must be well formed: ``"10,00"`` is rejected, not read as 1000);
* decimals with or without the leading zero: ``".5"`` equals ``"0.5"``;
* fractions and mixed numbers: ``"3/2"``, ``"1 1/2"`` and ``"1.5"`` are the same
  number.

Numeric answers are compared by exact rational value (``fractions.Fraction``),
so ``"4/6"`` is accepted for ``"2/3"`` unless the item asks for a particular
written form. An item says so with an optional ``answer_format`` field in the
curriculum document, passed here as ``answer_format=`` (None or "" for none):

``"simplest"``
    a whole number or a single fraction ``a/b`` in lowest terms, with ``b > 1``
    (items that ask to simplify).
``"mixed"``
    a whole number, or a mixed number ``w a/b`` whose fraction is proper and in
    lowest terms (items that ask for a mixed number).
``"fraction"``
    a single fraction ``a/b``, improper allowed (items that ask for an improper
    fraction).
``"decimal"``
    a whole number or a decimal (items that ask to write a fraction as a
    decimal).

An expected answer that is not a number (``">"``, ``"yes"``) is compared as
text, after collapsing whitespace and ignoring case.

Multiple choice (``choices`` given): the response must be one of the choices
and that choice must be the expected answer, both compared exactly after
whitespace normalisation (case matters: the learner picked a displayed text).

The checker never raises on learner input: anything it cannot read is simply
wrong. Responses longer than ``MAX_RESPONSE_LENGTH`` characters are rejected
unread.
"""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

MAX_RESPONSE_LENGTH = 200
ANSWER_FORMATS = frozenset({"simplest", "mixed", "fraction", "decimal"})

# Look-alike characters a phone keyboard or a copy-paste brings in.
_TRANSLATION = str.maketrans(
    {
        "\u2044": "/",  # fraction slash
        "\u2215": "/",  # division slash
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space
    }
)

_WHOLE = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_INTEGER_RE = re.compile(rf"(?P<sign>[+-]?)(?P<whole>{_WHOLE})")
# "0.5", ".5" and "5." are all decimals a learner types.
_DECIMAL_RE = re.compile(
    rf"(?P<sign>[+-]?)(?P<whole>{_WHOLE})?\.(?P<fraction>\d+)"
    rf"|(?P<sign2>[+-]?)(?P<whole2>{_WHOLE})\."
)
_FRACTION_RE = re.compile(r"(?P<sign>[+-]?)(?P<numerator>\d+)\s*/\s*(?P<denominator>\d+)")
_MIXED_RE = re.compile(r"(?P<sign>[+-]?)(?P<whole>\d+)\s+(?P<numerator>\d+)\s*/\s*(?P<denominator>\d+)")
# Digits beyond this are not arithmetic a learner types; it also bounds Fraction's work.
_MAX_DIGITS = 30


@dataclasses.dataclass(frozen=True)
class ParsedNumber:
    """A number as the learner wrote it: its value and the form it was written in.

    ``form`` is one of ``"integer"``, ``"decimal"``, ``"fraction"``, ``"mixed"``;
    ``numerator``/``denominator`` are the written ones for fractions and for the
    fractional part of mixed numbers (not reduced), else ``None``.
    """

    value: Fraction
    form: str
    numerator: int | None = None
    denominator: int | None = None


@dataclasses.dataclass(frozen=True)
class AnswerCheck:
    """The verdict on one response.

    ``reason`` is one of ``"correct"``, ``"wrong"``, ``"unreadable"`` (not a
    number where a number was expected, empty or too long), ``"not_a_choice"``
    (multiple choice: the response is none of the choices) and ``"wrong_form"``
    (the right value written in a form the item does not ask for, e.g. ``4/6``
    where the simplest form is asked): feedback can tell these apart.
    """

    correct: bool
    reason: str

    def __bool__(self) -> bool:
        return self.correct


def normalise_text(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends; maps look-alike slashes and minus signs."""
    return " ".join(text.translate(_TRANSLATION).split())


def parse_number(text: str) -> ParsedNumber | None:
    """Read an integer, decimal, fraction or mixed number; None if ``text`` is not one of them."""
    text = normalise_text(text)
    if not text or sum(character.isdigit() for character in text) > _MAX_DIGITS:
        return None
    if match := _INTEGER_RE.fullmatch(text):
        whole_number = int(match["whole"].replace(",", ""))
        return ParsedNumber(Fraction(-whole_number if match["sign"] == "-" else whole_number), "integer")
    if match := _DECIMAL_RE.fullmatch(text):
        sign = match["sign"] or match["sign2"] or ""
        whole = (match["whole"] or match["whole2"] or "0").replace(",", "")
        fraction = match["fraction"] or ""
        value: Fraction = Fraction(int(whole + fraction), 10 ** len(fraction))
        return ParsedNumber(-value if sign == "-" else value, "decimal")
    if match := _FRACTION_RE.fullmatch(text):
        numerator, denominator = int(match["numerator"]), int(match["denominator"])
        if denominator == 0:
            return None
        value = Fraction(numerator, denominator)
        return ParsedNumber(-value if match["sign"] == "-" else value, "fraction", numerator, denominator)
    if match := _MIXED_RE.fullmatch(text):
        whole_part, numerator, denominator = int(match["whole"]), int(match["numerator"]), int(match["denominator"])
        # "1 5/4" is not a mixed number a learner means; reading it as 2 1/4 would guess.
        if denominator == 0 or numerator >= denominator:
            return None
        value = whole_part + Fraction(numerator, denominator)
        return ParsedNumber(-value if match["sign"] == "-" else value, "mixed", numerator, denominator)
    return None


def _has_form(number: ParsedNumber, answer_format: str | None) -> bool:
    if answer_format is None:
        return True
    # Fractions and mixed numbers carry their written numerator and denominator (integers and decimals none).
    numerator, denominator = number.numerator or 0, number.denominator or 1
    if answer_format == "simplest":
        if number.form == "integer":
            return True
        return number.form == "fraction" and denominator > 1 and math.gcd(numerator, denominator) == 1
    if answer_format == "mixed":
        if number.form == "integer":
            return True
        if number.form == "mixed":
            return numerator > 0 and math.gcd(numerator, denominator) == 1
        # A proper fraction is already as mixed as it gets.
        return number.form == "fraction" and numerator < denominator and math.gcd(numerator, denominator) == 1
    if answer_format == "fraction":
        return number.form == "fraction"
    if answer_format == "decimal":
        return number.form in ("integer", "decimal")
    raise ValueError(f"unknown answer_format {answer_format!r}; expected one of {sorted(ANSWER_FORMATS)}")


def assess_answer(
    expected: str, response: str, *, choices: list[str] | None = None, answer_format: str | None = None
) -> AnswerCheck:
    """Judge ``response`` against the canonical ``expected`` answer; see the module docstring for the rules.

    ``expected``, ``choices`` and ``answer_format`` come from the curriculum (an
    unknown ``answer_format`` is an authoring error and raises ValueError);
    ``response`` comes from the learner and never makes this raise.
    """
    # A database column stores "no format" as the empty string.
    answer_format = answer_format or None
    if answer_format is not None and answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer_format {answer_format!r}; expected one of {sorted(ANSWER_FORMATS)}")
    if not isinstance(response, str) or len(response) > MAX_RESPONSE_LENGTH:
        return AnswerCheck(False, "unreadable")
    response_text = normalise_text(response)
    if not response_text:
        return AnswerCheck(False, "unreadable")
    if choices is not None:
        normalised_choices = {normalise_text(choice) for choice in choices}
        if response_text not in normalised_choices:
            return AnswerCheck(False, "not_a_choice")
        correct = response_text == normalise_text(expected)
        return AnswerCheck(correct, "correct" if correct else "wrong")
    expected_number = parse_number(expected)
    if expected_number is None:
        correct = response_text.casefold() == normalise_text(expected).casefold()
        return AnswerCheck(correct, "correct" if correct else "wrong")
    response_number = parse_number(response_text)
    if response_number is None:
        return AnswerCheck(False, "unreadable")
    if response_number.value != expected_number.value:
        return AnswerCheck(False, "wrong")
    if not _has_form(response_number, answer_format):
        return AnswerCheck(False, "wrong_form")
    return AnswerCheck(True, "correct")
