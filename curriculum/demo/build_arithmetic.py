"""Generate the demo arithmetic course (place value to fractions) as a curriculum document.

Run from the repository root::

    python curriculum/demo/build_arithmetic.py            # rewrites curriculum/demo/arithmetic.json
    python curriculum/demo/build_arithmetic.py --check    # exit 1 if the committed file is stale

Items come from templates filled with numbers drawn from a fixed seed; every
answer is computed here (``fractions.Fraction`` for the fraction skills), never
typed by hand. Each skill draws from its own random stream, seeded from the
skill id, so adding or editing one skill leaves the others' items unchanged.

Skill ids follow the Khan Academy exercise each skill corresponds to where one
exists (noted in ``KHAN_EXERCISES``), and the prerequisite edges follow the
2012 Khan knowledge map's, collapsed onto these coarser skills.

Besides the fields every item has (id, skills, body, answer, choices,
explanation, difficulty), an item may carry ``answer_format`` ("simplest",
"mixed", "fraction", "decimal") when its question asks for a written form; see
``curriculum.answers``. This script imports nothing of Django or of the project.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

SEED = 20121212
OUTPUT = Path(__file__).with_name("arithmetic.json")

COURSE = {"id": "arithmetic", "name": "Arithmetic: from place value to fractions"}

# (id, name, description), in teaching order.
SKILLS = [
    ("place-value", "Place value", "Read the value of each digit in whole numbers up to the hundred thousands."),
    ("compare-numbers", "Comparing whole numbers", "Compare and order whole numbers using <, > and =."),
    ("add-no-carry", "Addition without carrying", "Add whole numbers whose column sums stay below ten."),
    ("add-carry", "Addition with carrying", "Add multi-digit whole numbers, carrying into the next column."),
    ("sub-no-borrow", "Subtraction without borrowing", "Subtract whole numbers where no column needs to borrow."),
    (
        "sub-borrow",
        "Subtraction with borrowing",
        "Subtract multi-digit whole numbers, borrowing (regrouping) across columns, including across zeros.",
    ),
    ("mult-facts", "Multiplication facts", "Recall products of one-digit numbers (and up to 12 x 12)."),
    ("mult-multi-digit", "Multi-digit multiplication", "Multiply multi-digit numbers by one- and two-digit numbers."),
    ("div-facts", "Division facts", "Divide using the multiplication facts, with no remainder."),
    (
        "long-division",
        "Long division",
        "Divide multi-digit numbers by one- and two-digit divisors, with and without remainders.",
    ),
    (
        "factors-gcf",
        "Factors and greatest common factor",
        "Find factors of a number and the greatest common factor of two numbers.",
    ),
    (
        "multiples-lcm",
        "Multiples and least common multiple",
        "Find multiples of a number and the least common multiple of two numbers.",
    ),
    ("frac-equiv", "Equivalent fractions", "Find a missing numerator or denominator that makes two fractions equal."),
    (
        "frac-simplify",
        "Simplifying fractions",
        "Write a fraction in simplest form by dividing by the greatest common factor.",
    ),
    ("frac-compare", "Comparing fractions", "Compare fractions with like and unlike denominators."),
    ("frac-add-like", "Adding fractions with common denominators", "Add fractions that share a denominator."),
    ("frac-sub-like", "Subtracting fractions with common denominators", "Subtract fractions that share a denominator."),
    (
        "frac-add-unlike",
        "Adding fractions with unlike denominators",
        "Add fractions by first rewriting them over a common denominator.",
    ),
    (
        "frac-sub-unlike",
        "Subtracting fractions with unlike denominators",
        "Subtract fractions by first rewriting them over a common denominator.",
    ),
    ("mixed-numbers", "Mixed numbers and improper fractions", "Convert between mixed numbers and improper fractions."),
    ("frac-multiply", "Multiplying fractions", "Multiply a fraction by a whole number or by another fraction."),
    ("frac-of-quantity", "Fractions of a quantity", "Find a fraction of a whole number, including in word problems."),
    (
        "decimals-basics",
        "Decimal basics",
        "Read tenths and hundredths, compare decimals, and convert between decimals and fractions.",
    ),
]

# The Khan Academy (2012) exercises each skill stands for.
KHAN_EXERCISES = {
    "place-value": ["place_value"],
    "compare-numbers": ["ordering_numbers"],
    "add-no-carry": ["addition_2"],
    "add-carry": ["addition_3", "addition_4"],
    "sub-no-borrow": ["subtraction_2"],
    "sub-borrow": ["subtraction_3", "subtraction_4"],
    "mult-facts": ["multiplication_1", "multiplication_1.5"],
    "mult-multi-digit": ["multiplication_2", "multiplication_3", "multiplication_4"],
    "div-facts": ["division_1", "division_2"],
    "long-division": ["division_3", "division_4"],
    "factors-gcf": ["divisibility_intuition", "greatest_common_divisor"],
    "multiples-lcm": ["least_common_multiple"],
    "frac-equiv": ["equivalent_fractions", "equivalent_fractions_2"],
    "frac-simplify": ["simplifying_fractions"],
    "frac-compare": ["comparing_fractions_1", "comparing_fractions_2"],
    "frac-add-like": ["adding_fractions_with_common_denominators"],
    "frac-sub-like": ["subtracting_fractions_with_common_denominators"],
    "frac-add-unlike": ["adding_fractions"],
    "frac-sub-unlike": ["subtracting_fractions"],
    "mixed-numbers": ["converting_mixed_numbers_and_improper_fractions"],
    "frac-multiply": ["multiplying_fractions_0.5", "multiplying_fractions"],
    "frac-of-quantity": ["multiplying_fractions_word_problems", "fraction_word_problems_1"],
    "decimals-basics": ["understanding_decimals_place_value", "converting_decimals_to_fractions_1"],
}

# (from, to): "from" should be mastered before "to".
PREREQUISITES = [
    ("place-value", "compare-numbers"),
    ("place-value", "add-no-carry"),
    ("add-no-carry", "add-carry"),
    ("add-no-carry", "sub-no-borrow"),
    ("sub-no-borrow", "sub-borrow"),
    ("add-no-carry", "mult-facts"),
    ("mult-facts", "mult-multi-digit"),
    ("mult-facts", "div-facts"),
    ("div-facts", "long-division"),
    ("mult-multi-digit", "long-division"),
    ("div-facts", "factors-gcf"),
    ("mult-facts", "multiples-lcm"),
    ("mult-facts", "frac-equiv"),
    ("frac-equiv", "frac-simplify"),
    ("factors-gcf", "frac-simplify"),
    ("frac-equiv", "frac-compare"),
    ("add-no-carry", "frac-add-like"),
    ("sub-no-borrow", "frac-sub-like"),
    ("frac-add-like", "frac-add-unlike"),
    ("frac-simplify", "frac-add-unlike"),
    ("multiples-lcm", "frac-add-unlike"),
    ("frac-sub-like", "frac-sub-unlike"),
    ("frac-add-unlike", "frac-sub-unlike"),
    ("frac-simplify", "mixed-numbers"),
    ("frac-simplify", "frac-multiply"),
    ("frac-multiply", "frac-of-quantity"),
    ("frac-equiv", "decimals-basics"),
]

PLACE_NAMES = ["ones", "tens", "hundreds", "thousands", "ten thousands", "hundred thousands"]
NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kofi",
    "Lena",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Ravi",
    "Sofia",
    "Tom",
]

Item = dict
Template = Callable[[random.Random, int], Item]


def grouped(number: int) -> str:
    """A whole number as a learner reads it: thousands separated by commas above 9999."""
    return f"{number:,}" if number >= 10_000 else str(number)


def fraction_text(value: Fraction) -> str:
    """Canonical answer text of a rational: "3", "5/6", "7/4" (lowest terms, improper kept)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def mixed_text(value: Fraction) -> str:
    """A positive rational as a mixed number: "2 3/4", "3", "1/2"."""
    whole, remainder = divmod(value.numerator, value.denominator)
    if remainder == 0:
        return str(whole)
    part = f"{remainder}/{value.denominator}"
    return f"{whole} {part}" if whole else part


def decimal_text(value: Fraction) -> str:
    """A non-negative terminating decimal without trailing zeros: "0.35", "2.5", "4"."""
    places = 0
    while (10**places) % value.denominator:
        places += 1
        if places > 12:
            raise ValueError(f"{value} does not terminate")
    if places == 0:
        return str(value.numerator)
    scaled = int(value * 10**places)
    return f"{scaled // 10**places}.{scaled % 10**places:0{places}d}".rstrip("0").rstrip(".")


def item(
    body: str,
    answer: str,
    explanation: str,
    *,
    choices: list[str] | None = None,
    extra_skills: tuple[str, ...] = (),
    answer_format: str | None = None,
) -> Item:
    result: Item = {
        "body": body,
        "answer": answer,
        "choices": choices,
        "explanation": explanation,
        "extra_skills": list(extra_skills),
    }
    if answer_format is not None:
        result["answer_format"] = answer_format
    return result


def with_choices(rng: random.Random, answer: str, distractors: list[str], count: int = 4) -> list[str]:
    """The answer plus ``count - 1`` distinct distractors drawn from ``distractors``, shuffled by ``rng``.

    The first distractor is always kept: templates put the misconception they target there.
    """
    options: list[str] = []
    for distractor in distractors:
        if distractor != answer and distractor not in options:
            options.append(distractor)
    if len(options) < count - 1:
        raise ValueError(f"not enough distinct distractors for {answer!r}: {distractors}")
    choices = [options[0], *rng.sample(options[1:], count - 2), answer]
    rng.shuffle(choices)
    return choices


def digits_with(rng: random.Random, length: int) -> list[int]:
    """``length`` distinct digits, the leading one non-zero (most significant first)."""
    while True:
        digits = rng.sample(range(10), length)
        if digits[0]:
            return digits


def random_fraction(rng: random.Random, denominators: list[int], *, proper: bool = True) -> Fraction:
    denominator = rng.choice(denominators)
    numerator = rng.randint(1, denominator - 1 if proper else 2 * denominator - 1)
    return Fraction(numerator, denominator)


def written(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator}"


# --- whole numbers ---------------------------------------------------------------------------


def place_digit(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 6}[difficulty]
    digits = digits_with(rng, length)
    number = int("".join(map(str, digits)))
    # The ones place is only asked at the easiest level.
    place = rng.randrange(length) if difficulty == 1 else rng.randrange(1, length)
    digit = digits[length - 1 - place]
    return item(
        f"What digit is in the {PLACE_NAMES[place]} place of {grouped(number)}?",
        str(digit),
        f"Counting from the right, the {PLACE_NAMES[place]} place of {grouped(number)} holds the digit {digit}.",
    )


def place_value_of_digit(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 5}[difficulty]
    digits = digits_with(rng, length)
    number = int("".join(map(str, digits)))
    place = rng.randrange(1, length)
    digit = digits[length - 1 - place]
    if digit == 0:
        place, digit = length - 1, digits[0]
    value = digit * 10**place
    return item(
        f"What is the value of the digit {digit} in {grouped(number)}?",
        str(value),
        f"The {digit} is in the {PLACE_NAMES[place]} place, so it stands for {digit} x {10**place:,} = {value:,}.",
    )


def place_expanded(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 5}[difficulty]
    digits = [rng.randint(1, 9)] + [rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) for _ in range(length - 1)]
    number = int("".join(map(str, digits)))
    parts = []
    for index, digit in enumerate(digits):
        if digit:
            place = PLACE_NAMES[length - 1 - index]
            parts.append(f"{digit} {place.removesuffix('s') if digit == 1 else place}")
    phrase = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return item(
        f"What number has {phrase}?",
        str(number),
        f"Writing each digit in its place (and 0 in any place not mentioned) gives {grouped(number)}.",
    )


def place_choice(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 5}[difficulty]
    place = rng.randrange(1, length)
    digit = rng.randint(1, 9)
    numbers: list[int] = []
    while len(numbers) < 4:
        digits = digits_with(rng, length)
        if digit in digits:
            digits.remove(digit)
        if len(numbers) == 0:
            digits.insert(length - 1 - place, digit)
        else:
            # A distractor holds the digit somewhere else, so reading the place matters.
            wrong_place = rng.choice([p for p in range(length) if p != place])
            digits.insert(length - 1 - wrong_place, digit)
        digits = digits[:length]
        if digits[0] == 0 or digits[length - 1 - place] == digit and numbers:
            continue
        number = int("".join(map(str, digits)))
        if len(str(number)) == length and number not in numbers:
            numbers.append(number)
    answer = grouped(numbers[0])
    return item(
        f"Which number has the digit {digit} in the {PLACE_NAMES[place]} place?",
        answer,
        f"In {answer} the digit {digit} is in the {PLACE_NAMES[place]} place; in the others it is in another place.",
        choices=with_choices(rng, answer, [grouped(number) for number in numbers[1:]]),
    )


def times_power_of_ten(rng: random.Random, difficulty: int) -> Item:
    number = rng.randint(12, 99) if difficulty < 3 else rng.randint(101, 999)
    power = rng.choice([10, 100]) if difficulty < 3 else 1000
    product = number * power
    zeros = len(str(power)) - 1
    return item(
        f"{number} × {power} = ?",
        str(product),
        f"Multiplying by {power:,} moves every digit {zeros} place{'s' if zeros > 1 else ''} to the left: "
        f"{grouped(product)}.",
        extra_skills=("mult-multi-digit",),
    )


def compare_symbol(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 5}[difficulty]
    first = int("".join(map(str, digits_with(rng, length))))
    kind = rng.choice(["swap", "swap", "near", "equal"] if difficulty > 1 else ["swap", "near"])
    if kind == "swap":
        digits = list(str(first))
        left, right = sorted(rng.sample(range(length), 2))
        digits[left], digits[right] = digits[right], digits[left]
        second = int("".join(digits)) if digits[0] != "0" else first + rng.randint(1, 9)
    elif kind == "near":
        second = first + rng.choice([-1, 1]) * 10 ** rng.randrange(length - 1)
    else:
        second = first
    symbol = "<" if first < second else ">" if first > second else "="
    choices = ["<", ">", "="] if rng.random() < 0.4 else None
    return item(
        f"Which symbol makes this true: {grouped(first)} ? {grouped(second)} (answer <, > or =)",
        symbol,
        _compare_explanation(first, second, symbol),
        choices=choices,
    )


def _compare_explanation(first: int, second: int, symbol: str) -> str:
    if symbol == "=":
        return "The two numbers have the same digits in every place, so they are equal."
    a, b = str(first), str(second)
    word = "greater" if symbol == ">" else "less"
    if len(a) != len(b):
        more = "more" if len(a) > len(b) else "fewer"
        return f"{grouped(first)} has {more} digits, so it is {word} than {grouped(second)}."
    place = next(index for index, (x, y) in enumerate(zip(a, b)) if x != y)
    return (
        f"Comparing from the left, the first different digit is in the {PLACE_NAMES[len(a) - 1 - place]} place: "
        f"{a[place]} vs {b[place]}, so {grouped(first)} is {word} than {grouped(second)}."
    )


def compare_extreme(rng: random.Random, difficulty: int) -> Item:
    length = {1: 3, 2: 4, 3: 5}[difficulty]
    digits = digits_with(rng, length)
    numbers: list[int] = []
    # Rearrangements of the same digits: only place value tells them apart.
    while len(numbers) < 4:
        shuffled = digits[:]
        rng.shuffle(shuffled)
        if shuffled[0]:
            number = int("".join(map(str, shuffled)))
            if number not in numbers:
                numbers.append(number)
    greatest = rng.random() < 0.5
    target = max(numbers) if greatest else min(numbers)
    word = "greatest" if greatest else "smallest"
    return item(
        f"Which of these numbers is the {word}?",
        grouped(target),
        f"All four use the same digits, so compare from the left: {grouped(target)} is the {word}.",
        choices=with_choices(rng, grouped(target), [grouped(number) for number in numbers if number != target]),
    )


def _column_sum(rng: random.Random, length: int, carry: bool) -> tuple[int, int]:
    while True:
        first = rng.randint(10 ** (length - 1), 10**length - 1)
        second = rng.randint(10 ** (length - 1), 10**length - 1)
        carries = any(int(x) + int(y) >= 10 for x, y in zip(str(first), str(second)))
        if carries == carry:
            return first, second


def add_plain(rng: random.Random, difficulty: int) -> Item:
    if difficulty == 1:
        while True:
            first, second = rng.randint(11, 88), rng.randint(1, 8)
            if first % 10 + second < 10:
                break
    else:
        first, second = _column_sum(rng, difficulty, carry=False)
    total = first + second
    return item(
        f"{first} + {second} = ?",
        str(total),
        f"Add column by column from the ones; no column reaches ten, so {first} + {second} = {total}.",
    )


def add_plain_words(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_sum(rng, 2 if difficulty < 3 else 3, carry=False)
    name = rng.choice(NAMES)
    total = first + second
    return item(
        f"{name} has {first} marbles and wins {second} more. How many marbles does {name} have now?",
        str(total),
        f"{first} + {second} = {total}, adding ones to ones and tens to tens.",
    )


def add_plain_choice(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_sum(rng, difficulty + 1, carry=False)
    total = first + second
    distractors = [str(total + 10), str(total - 10), str(total + 1), str(total + 100), str(abs(first - second))]
    rng.shuffle(distractors)
    return item(
        f"{first} + {second} = ?",
        str(total),
        f"Add each column: ones to ones, tens to tens; the sum is {total}.",
        choices=with_choices(rng, str(total), distractors),
    )


def _carries_of(first: int, second: int) -> int:
    count, carry = 0, 0
    while first or second:
        carry = 1 if first % 10 + second % 10 + carry >= 10 else 0
        count += carry
        first, second = first // 10, second // 10
    return count


def add_with_carry(rng: random.Random, difficulty: int) -> Item:
    length = {1: 2, 2: 3, 3: 4}[difficulty]
    while True:
        first = rng.randint(10 ** (length - 1), 10**length - 1)
        second = rng.randint(10 ** (length - 1), 10**length - 1)
        if _carries_of(first, second) >= min(difficulty, length - 1):
            break
    total = first + second
    return item(
        f"{grouped(first)} + {grouped(second)} = ?",
        str(total),
        "Add from the ones place, carrying 1 to the next column whenever a column sum is 10 or more: "
        f"{grouped(total)}.",
    )


def add_carry_choice(rng: random.Random, difficulty: int) -> Item:
    length = difficulty + 1
    while True:
        first = rng.randint(10 ** (length - 1), 10**length - 1)
        second = rng.randint(10 ** (length - 1), 10**length - 1)
        if _carries_of(first, second) >= 1:
            break
    total = first + second
    # Forgetting every carry: add each column and keep only its ones digit.
    columns = zip(str(first).zfill(length), str(second).zfill(length))
    no_carry = int("".join(str((int(x) + int(y)) % 10) for x, y in columns))
    distractors = [str(no_carry), str(total + 10), str(total - 10), str(total + 100), str(total - 1)]
    return item(
        f"{first} + {second} = ?",
        str(total),
        f"Carry 1 into the next column each time a column adds up to 10 or more; the sum is {total}.",
        choices=with_choices(rng, str(total), distractors),
    )


def add_carry_words(rng: random.Random, difficulty: int) -> Item:
    low, high = (100, 499) if difficulty < 3 else (1000, 4999)
    while True:
        first, second = rng.randint(low, high), rng.randint(low, high)
        if _carries_of(first, second) >= 2:
            break
    total = first + second
    explanation = f"{first} + {second} = {total}, carrying where a column reaches ten."
    if rng.random() < 0.5:
        return item(
            f"A library lends {first} books in March and {second} books in April. "
            "How many books does it lend in the two months together?",
            str(total),
            explanation,
        )
    name = rng.choice(NAMES)
    return item(
        f"{name} walks {first} steps before lunch and {second} steps after lunch. How many steps is that in all?",
        str(total),
        explanation,
    )


def _column_difference(rng: random.Random, length: int, borrow: bool) -> tuple[int, int]:
    while True:
        first = rng.randint(10 ** (length - 1), 10**length - 1)
        second = rng.randint(10 ** (length - 1) if length > 1 else 1, first)
        borrows = any(int(x) < int(y) for x, y in zip(str(first), str(second).zfill(length)))
        if borrows == borrow and first != second:
            return first, second


def sub_plain(rng: random.Random, difficulty: int) -> Item:
    if difficulty == 1:
        while True:
            first, second = rng.randint(12, 99), rng.randint(1, 9)
            if first % 10 >= second:
                break
    else:
        first, second = _column_difference(rng, difficulty + 1, borrow=False)
    difference = first - second
    return item(
        f"{first} - {second} = ?",
        str(difference),
        f"Subtract column by column; each top digit is at least the bottom one, so {first} - {second} = {difference}.",
    )


def sub_plain_words(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_difference(rng, difficulty + 1, borrow=False)
    name = rng.choice(NAMES)
    difference = first - second
    return item(
        f"{name} had {first} stickers and gave away {second}. How many stickers are left?",
        str(difference),
        f"{first} - {second} = {difference}; no column needs to borrow.",
    )


def sub_plain_choice(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_difference(rng, difficulty + 1, borrow=False)
    difference = first - second
    distractors = [
        str(first + second),
        str(difference + 10),
        str(difference - 1),
        str(difference + 1),
        str(difference + 100),
    ]
    rng.shuffle(distractors)
    return item(
        f"{first} - {second} = ?",
        str(difference),
        f"Subtract each column: {first} - {second} = {difference}.",
        choices=with_choices(rng, str(difference), distractors),
    )


def sub_with_borrow(rng: random.Random, difficulty: int) -> Item:
    if difficulty == 3:
        # Borrowing across a zero, the step learners most often get wrong.
        hundreds = rng.randint(2, 9)
        first = hundreds * 100 + rng.randint(0, 9) if rng.random() < 0.5 else hundreds * 1000 + rng.randint(1, 9)
        second = rng.randint(first // 3, first - 1)
        while not any(int(x) < int(y) for x, y in zip(str(first), str(second).zfill(len(str(first))))):
            second = rng.randint(first // 3, first - 1)
    else:
        first, second = _column_difference(rng, difficulty + 1, borrow=True)
    difference = first - second
    through_zeros = " (passing through the zeros)" if "0" in str(first)[1:] else ""
    return item(
        f"{grouped(first)} - {grouped(second)} = ?",
        str(difference),
        f"Where a top digit is smaller, borrow 1 from the next column to the left{through_zeros}: "
        f"{grouped(first)} - {grouped(second)} = {grouped(difference)}.",
    )


def sub_borrow_choice(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_difference(rng, difficulty + 1, borrow=True)
    difference = first - second
    length = len(str(first))
    # Subtracting the smaller digit from the larger in each column instead of borrowing.
    smaller_from_larger = int("".join(str(abs(int(x) - int(y))) for x, y in zip(str(first), str(second).zfill(length))))
    distractors = [
        str(smaller_from_larger),
        str(difference + 10),
        str(difference - 10),
        str(difference + 1),
        str(difference + 100),
    ]
    return item(
        f"{first} - {second} = ?",
        str(difference),
        f"Borrow instead of subtracting the smaller digit from the larger: {first} - {second} = {difference}.",
        choices=with_choices(rng, str(difference), distractors),
    )


def sub_borrow_words(rng: random.Random, difficulty: int) -> Item:
    first, second = _column_difference(rng, 3 if difficulty < 3 else 4, borrow=True)
    difference = first - second
    return item(
        f"A school has {grouped(first)} pupils. {grouped(second)} of them are at a sports day. How many "
        "pupils are not at the sports day?",
        str(difference),
        f"{grouped(first)} - {grouped(second)} = {grouped(difference)}, borrowing where needed.",
    )


# --- multiplication and division ------------------------------------------------------------


def _fact_range(difficulty: int) -> tuple[int, int]:
    return {1: (2, 5), 2: (2, 9), 3: (6, 12)}[difficulty]


def mult_fact(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    first, second = rng.randint(low, high), rng.randint(low, high)
    product = first * second
    return item(f"{first} × {second} = ?", str(product), f"{first} groups of {second} make {product}.")


def mult_fact_missing(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    first, second = rng.randint(low, high), rng.randint(low, high)
    return item(
        f"Fill in the missing number: {first} × ? = {first * second}",
        str(second),
        f"{first} × {second} = {first * second}, so the missing number is {second}.",
    )


def mult_fact_choice(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    first, second = rng.randint(max(low, 3), high), rng.randint(max(low, 3), high)
    product = first * second
    distractors = [
        str(product + first),
        str(product - first),
        str(product + second),
        str(first + second),
        str(product - second),
        str(product + 1),
        str(product - 1),
    ]
    return item(
        f"{first} × {second} = ?",
        str(product),
        f"{first} × {second} = {product}.",
        choices=with_choices(rng, str(product), distractors),
    )


def mult_by_one_digit(rng: random.Random, difficulty: int) -> Item:
    first = rng.randint(12, 99) if difficulty == 1 else rng.randint(102, 999)
    second = rng.randint(2, 9)
    product = first * second
    return item(
        f"{first} × {second} = ?",
        str(product),
        f"Multiply each digit of {first} by {second}, starting from the ones and carrying: {grouped(product)}.",
    )


def mult_two_by_two(rng: random.Random, difficulty: int) -> Item:
    first, second = rng.randint(12, 99), rng.choice([n for n in range(11, 100) if n % 10])
    product = first * second
    return item(
        f"{first} × {second} = ?",
        str(product),
        f"{first} × {second} = {first} × {second // 10 * 10} + {first} × {second % 10} = "
        f"{first * (second // 10 * 10)} + {first * (second % 10)} = {product}.",
    )


def mult_multi_choice(rng: random.Random, difficulty: int) -> Item:
    first = rng.randint(21, 99) if difficulty < 3 else rng.randint(120, 499)
    second = rng.randint(3, 9) if difficulty < 2 else rng.randint(12, 39)
    product = first * second
    distractors = [
        str(product + 10),
        str(product - 10),
        str(product + second),
        str(product - first),
        str(product + 100),
    ]
    if second >= 10:
        # Forgetting the placeholder zero of the tens row.
        distractors.insert(0, str(first * (second % 10) + first * (second // 10)))
    return item(
        f"{first} × {second} = ?",
        str(product),
        f"{first} × {second} = {grouped(product)}.",
        choices=with_choices(rng, str(product), distractors),
    )


def mult_words(rng: random.Random, difficulty: int) -> Item:
    per = rng.randint(12, 48)
    count = rng.randint(3, 9) if difficulty < 3 else rng.randint(12, 35)
    product = per * count
    return item(
        f"A crate holds {per} bottles. How many bottles are in {count} crates?",
        str(product),
        f"{count} crates of {per} bottles is {count} × {per} = {product}.",
    )


def div_fact(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    divisor, quotient = rng.randint(low, high), rng.randint(low, high)
    dividend = divisor * quotient
    return item(
        f"{dividend} ÷ {divisor} = ?",
        str(quotient),
        f"{divisor} × {quotient} = {dividend}, so {dividend} ÷ {divisor} = {quotient}.",
    )


def div_fact_words(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    divisor, quotient = rng.randint(max(low, 3), high), rng.randint(max(low, 3), high)
    dividend = divisor * quotient
    return item(
        f"{dividend} apples are shared equally among {divisor} baskets. How many apples go in each basket?",
        str(quotient),
        f"{dividend} ÷ {divisor} = {quotient}, because {divisor} × {quotient} = {dividend}.",
    )


def div_fact_choice(rng: random.Random, difficulty: int) -> Item:
    low, high = _fact_range(difficulty)
    divisor, quotient = rng.randint(max(low, 3), high), rng.randint(max(low, 3), high)
    dividend = divisor * quotient
    distractors = [str(quotient + 1), str(quotient - 1), str(quotient + 2), str(dividend - divisor), str(quotient * 2)]
    return item(
        f"{dividend} ÷ {divisor} = ?",
        str(quotient),
        f"{divisor} × {quotient} = {dividend}.",
        choices=with_choices(rng, str(quotient), distractors),
    )


def long_div_exact(rng: random.Random, difficulty: int) -> Item:
    if difficulty == 1:
        divisor, quotient = rng.randint(2, 9), rng.randint(11, 49)
    elif difficulty == 2:
        # Three-digit quotients, often with a zero inside (101-199).
        divisor, quotient = rng.randint(3, 9), rng.randint(101, 199)
    else:
        divisor, quotient = rng.randint(12, 39), rng.randint(12, 49)
    dividend = divisor * quotient
    return item(
        f"{dividend} ÷ {divisor} = ?",
        str(quotient),
        f"Divide digit by digit from the left, bringing down the next digit each time: {dividend} ÷ {divisor} "
        f"= {quotient}.",
    )


def long_div_remainder(rng: random.Random, difficulty: int) -> Item:
    divisor = rng.randint(3, 9) if difficulty < 3 else rng.randint(11, 25)
    dividend = rng.randint(50, 99) if difficulty == 1 else rng.randint(150, 999)
    while dividend % divisor == 0:
        dividend += 1
    quotient, remainder = divmod(dividend, divisor)
    return item(
        f"What is the remainder when {dividend} is divided by {divisor}?",
        str(remainder),
        f"{divisor} × {quotient} = {divisor * quotient} and {dividend} - {divisor * quotient} = {remainder}.",
    )


def long_div_words(rng: random.Random, difficulty: int) -> Item:
    seats = rng.choice([20, 24, 30, 36, 40, 45, 48]) if difficulty == 3 else rng.randint(4, 9)
    pupils = rng.randint(seats * 5, seats * 12)
    while pupils % seats == 0:
        pupils += 1
    buses = -(-pupils // seats)
    return item(
        f"{pupils} pupils go on a trip in minibuses that seat {seats} pupils each. How many minibuses are "
        "needed so that every pupil has a seat?",
        str(buses),
        f"{pupils} ÷ {seats} = {pupils // seats} remainder {pupils % seats}; the {pupils % seats} "
        f"left over need one more minibus, so {buses}.",
    )


def long_div_choice(rng: random.Random, difficulty: int) -> Item:
    divisor = rng.randint(3, 9)
    quotient = rng.randint(21, 99) if difficulty < 3 else rng.randint(102, 199)
    dividend = divisor * quotient
    text = str(quotient)
    # Dropping an inner zero of the quotient ("102" -> "12") is the classic long-division slip.
    distractors = [
        text.replace("0", "") or "1",
        str(quotient + 1),
        str(quotient - 1),
        str(quotient + 10),
        str(quotient * 10),
    ]
    return item(
        f"{dividend} ÷ {divisor} = ?",
        text,
        f"{divisor} × {quotient} = {dividend}.",
        choices=with_choices(rng, text, distractors),
    )


# --- factors and multiples ------------------------------------------------------------------


def gcf_pair(rng: random.Random, difficulty: int) -> Item:
    common = rng.randint(2, {1: 5, 2: 9, 3: 15}[difficulty])
    while True:
        first, second = rng.sample(range(2, {1: 6, 2: 9, 3: 12}[difficulty] + 1), 2)
        if math.gcd(first, second) == 1:
            break
    a, b = common * first, common * second
    return item(
        f"What is the greatest common factor of {a} and {b}?",
        str(common),
        f"{a} = {common} × {first} and {b} = {common} × {second}, and {first} and {second} share no factor "
        f"but 1, so the GCF is {common}.",
    )


def factor_choice(rng: random.Random, difficulty: int) -> Item:
    number = rng.choice(
        {1: [12, 18, 20, 24, 30], 2: [36, 42, 48, 54, 56, 60, 72], 3: [84, 90, 91, 96, 108, 117, 119, 126]}[difficulty]
    )
    factors = [d for d in range(2, number) if number % d == 0]
    answer = rng.choice(factors)
    non_factors = [d for d in range(3, min(number, 20)) if number % d]
    return item(
        f"Which of these numbers is a factor of {number}?",
        str(answer),
        f"{number} ÷ {answer} = {number // answer} with nothing left over; the others leave a remainder.",
        choices=with_choices(rng, str(answer), [str(d) for d in rng.sample(non_factors, 3)]),
    )


def factor_count(rng: random.Random, difficulty: int) -> Item:
    number = rng.choice({1: [6, 8, 10, 14, 15], 2: [12, 16, 18, 20, 28], 3: [24, 30, 36, 40, 48]}[difficulty])
    factors = [d for d in range(1, number + 1) if number % d == 0]
    return item(
        f"How many factors does {number} have (count 1 and {number} too)?",
        str(len(factors)),
        f"The factors of {number} are {', '.join(map(str, factors))}: {len(factors)} of them.",
    )


def lcm_pair(rng: random.Random, difficulty: int) -> Item:
    pool = {1: [2, 3, 4, 5], 2: [3, 4, 6, 8, 9, 10], 3: [6, 8, 9, 10, 12, 14, 15]}[difficulty]
    first, second = rng.sample(pool, 2)
    lcm = first * second // math.gcd(first, second)
    return item(
        f"What is the least common multiple of {first} and {second}?",
        str(lcm),
        f"{lcm} is the first number in both lists of multiples: {lcm} = {first} × {lcm // first} = {second} × "
        f"{lcm // second}.",
    )


def multiple_choice_of(rng: random.Random, difficulty: int) -> Item:
    base = rng.randint(*{1: (3, 5), 2: (6, 9), 3: (11, 15)}[difficulty])
    answer = base * rng.randint(4, 9)
    distractors = [answer + offset for offset in range(-base + 1, base) if offset and (answer + offset) % base]
    return item(
        f"Which of these numbers is a multiple of {base}?",
        str(answer),
        f"{answer} = {base} × {answer // base}; the others are not in the {base} times table.",
        choices=with_choices(rng, str(answer), [str(d) for d in rng.sample(distractors, 3)]),
    )


def next_multiple(rng: random.Random, difficulty: int) -> Item:
    base = rng.randint(*{1: (3, 6), 2: (6, 9), 3: (11, 19)}[difficulty])
    bound = rng.randint(30, 99) if difficulty < 3 else rng.randint(100, 250)
    answer = (bound // base + 1) * base
    return item(
        f"What is the smallest multiple of {base} that is greater than {bound}?",
        str(answer),
        f"{bound} ÷ {base} = {bound // base} remainder {bound % base}, so the next multiple is {base} × "
        f"{bound // base + 1} = {answer}.",
    )


def common_denominator(rng: random.Random, difficulty: int) -> Item:
    pool = {1: [2, 3, 4], 2: [3, 4, 6, 8], 3: [4, 6, 8, 9, 10, 12]}[difficulty]
    first, second = rng.sample(pool, 2)
    lcm = first * second // math.gcd(first, second)
    a = rng.choice([n for n in range(1, first) if math.gcd(n, first) == 1])
    b = rng.choice([n for n in range(1, second) if math.gcd(n, second) == 1])
    return item(
        f"What is the least common denominator of {a}/{first} and {b}/{second}?",
        str(lcm),
        f"The least common denominator is the least common multiple of {first} and {second}, which is {lcm}.",
        extra_skills=("frac-add-unlike",),
    )


# --- fractions ------------------------------------------------------------------------------


def equiv_missing(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice({1: [2, 3, 4, 5], 2: [3, 4, 5, 6, 8], 3: [6, 7, 8, 9, 12]}[difficulty])
    numerator = rng.randint(1, denominator - 1)
    scale = rng.randint(2, {1: 4, 2: 6, 3: 9}[difficulty])
    if rng.random() < 0.5:
        return item(
            f"Fill in the missing number: {numerator}/{denominator} = ?/{denominator * scale}",
            str(numerator * scale),
            f"The denominator was multiplied by {scale}, so multiply the numerator by {scale} too: "
            f"{numerator * scale}.",
        )
    return item(
        f"Fill in the missing number: {numerator}/{denominator} = {numerator * scale}/?",
        str(denominator * scale),
        f"The numerator was multiplied by {scale}, so multiply the denominator by {scale} too: {denominator * scale}.",
    )


def equiv_reverse(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8, 10])
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    scale = rng.randint(2, 6)
    return item(
        f"Fill in the missing number: {numerator * scale}/{denominator * scale} = ?/{denominator}",
        str(numerator),
        f"The denominator was divided by {scale}, so divide the numerator by {scale} too: {numerator}.",
    )


def equiv_choice(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8])
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    scale = rng.randint(2, 5)
    shown = written(numerator * scale, denominator * scale)
    if difficulty < 3:
        answer = written(numerator, denominator)
    else:
        answer = written(numerator * (scale + 1), denominator * (scale + 1))
    # Adding the same number to top and bottom is the common wrong idea of "equivalent".
    distractors = [
        written(numerator + 1, denominator + 1),
        written(numerator * scale, denominator),
        written(numerator, denominator * scale),
        written(numerator + scale, denominator + scale),
        written(numerator + 1, denominator),
    ]
    distractors = [d for d in distractors if Fraction(d) != Fraction(numerator, denominator)]
    return item(
        f"Which fraction is equivalent to {shown}?",
        answer,
        f"Dividing (or multiplying) top and bottom of {shown} by the same number gives {answer}.",
        choices=with_choices(rng, answer, distractors),
    )


def simplify(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice({1: [2, 3, 4, 5], 2: [3, 4, 5, 6, 7, 8, 9], 3: [7, 9, 11, 12, 13, 15]}[difficulty])
    numerator = rng.randint(1, denominator - 1 if difficulty < 3 else 2 * denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1 if difficulty < 3 else 2 * denominator - 1)
    scale = rng.choice({1: [2, 3, 5], 2: [3, 4, 6, 8], 3: [6, 7, 8, 9, 12]}[difficulty])
    top, bottom = numerator * scale, denominator * scale
    answer = written(numerator, denominator)
    return item(
        f"Write {top}/{bottom} in simplest form.",
        answer,
        f"The greatest common factor of {top} and {bottom} is {scale}; dividing both by {scale} gives {answer}.",
        answer_format="simplest",
    )


def simplify_choice(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 7, 8])
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    scale = rng.choice([4, 6, 8] if difficulty < 3 else [9, 12])
    top, bottom = numerator * scale, denominator * scale
    answer = written(numerator, denominator)
    half = scale // 2
    # Dividing by a common factor that is not the greatest leaves a fraction that is equal but not simplest.
    distractors = [
        written(numerator * half, denominator * half),
        written(numerator + 1, denominator),
        written(numerator, denominator + 1),
        written(top - 1, bottom - 1),
    ]
    return item(
        f"Which is {top}/{bottom} in simplest form?",
        answer,
        f"Divide top and bottom by their greatest common factor, {scale}: {answer}.",
        choices=with_choices(rng, answer, distractors),
    )


def compare_fractions(rng: random.Random, difficulty: int) -> Item:
    if difficulty == 1:
        denominator = rng.randint(4, 12)
        first, second = rng.sample(range(1, denominator), 2)
        left, right = Fraction(first, denominator), Fraction(second, denominator)
        shown = (written(first, denominator), written(second, denominator))
        why = "With the same denominator, the fraction with the larger numerator is larger"
        extra: tuple[str, ...] = ()
    elif difficulty == 2:
        numerator = rng.randint(1, 4)
        first, second = rng.sample(range(numerator + 1, 13), 2)
        left, right = Fraction(numerator, first), Fraction(numerator, second)
        shown = (written(numerator, first), written(numerator, second))
        why = "With the same numerator, the fraction with the smaller denominator has the larger pieces"
        extra = ()
    else:
        while True:
            a, b = rng.choice([3, 4, 5, 6, 8, 9, 10, 12]), rng.choice([3, 4, 5, 6, 8, 9, 10, 12])
            left, right = random_fraction(rng, [a]), random_fraction(rng, [b])
            if a != b:
                break
        if rng.random() < 0.3:
            # An equal pair written differently: needs equivalent fractions to see.
            scale = rng.randint(2, 3)
            right = left
            shown = (
                written(left.numerator, left.denominator),
                written(left.numerator * scale, left.denominator * scale),
            )
            extra = ("frac-equiv",)
            why = f"Dividing the top and bottom of {shown[1]} by {scale} gives {shown[0]}"
        else:
            shown = (written(left.numerator, left.denominator), written(right.numerator, right.denominator))
            extra = ()
            common = left.denominator * right.denominator // math.gcd(left.denominator, right.denominator)
            why = (
                f"Over the common denominator {common} they are "
                f"{left.numerator * (common // left.denominator)}/{common} "
                f"and {right.numerator * (common // right.denominator)}/{common}"
            )
    symbol = "<" if left < right else ">" if left > right else "="
    return item(
        f"Which symbol makes this true: {shown[0]} ? {shown[1]} (answer <, > or =)",
        symbol,
        f"{why}, so {shown[0]} {symbol} {shown[1]}.",
        extra_skills=extra,
        choices=["<", ">", "="] if rng.random() < 0.3 else None,
    )


def greatest_fraction(rng: random.Random, difficulty: int) -> Item:
    denominators = {1: [2, 3, 4, 5, 6], 2: [3, 4, 6, 8, 10, 12], 3: [5, 6, 7, 8, 9, 10, 12]}[difficulty]
    fractions_: list[Fraction] = []
    texts: list[str] = []
    while len(fractions_) < 4:
        value = random_fraction(rng, denominators)
        if value not in fractions_:
            fractions_.append(value)
            texts.append(written(value.numerator, value.denominator))
    best = texts[fractions_.index(max(fractions_))]
    return item(
        "Which of these fractions is the greatest?",
        best,
        f"Rewriting them over a common denominator (or as decimals) shows {best} is the largest.",
        choices=with_choices(rng, best, [text for text in texts if text != best]),
    )


def _like_pair(rng: random.Random, difficulty: int, subtract: bool) -> tuple[int, int, int]:
    """Numerators and a shared denominator: sums stay proper and unsimplifiable at level 1,
    simplify at level 2 and pass one whole at level 3; differences start from an improper fraction at level 3."""
    denominator = rng.choice({1: [3, 5, 7, 9], 2: [4, 6, 8, 10, 12], 3: [5, 6, 7, 8, 9, 10, 12]}[difficulty])
    while True:
        second = rng.randint(1, denominator - 1)
        if subtract:
            if difficulty == 3:
                first = rng.randint(denominator + 1, 2 * denominator - 1)
            else:
                first = rng.randint(1, denominator - 1)
            simplifies = math.gcd(first - second, denominator) > 1
            # A whole-number difference ("8/8") is not the point of these items.
            if first > second and (first - second) % denominator and (difficulty != 2 or simplifies):
                return first, second, denominator
        else:
            first = rng.randint(1, denominator - 1)
            total = first + second
            if (
                (difficulty == 1 and total < denominator and math.gcd(total, denominator) == 1)
                or (difficulty == 2 and total < denominator and math.gcd(total, denominator) > 1)
                or (difficulty == 3 and total > denominator)
            ):
                return first, second, denominator


def _keep_denominator(top: int, denominator: int, operation: str) -> str:
    result = Fraction(top, denominator)
    tail = "" if result.denominator == denominator else f" = {fraction_text(result)}"
    return f"{operation} the numerators and keep the denominator: {top}/{denominator}{tail}."


def add_like(rng: random.Random, difficulty: int) -> Item:
    first, second, denominator = _like_pair(rng, difficulty, subtract=False)
    total = Fraction(first + second, denominator)
    return item(
        f"{first}/{denominator} + {second}/{denominator} = ?",
        fraction_text(total),
        _keep_denominator(first + second, denominator, "Add"),
    )


def add_like_choice(rng: random.Random, difficulty: int) -> Item:
    first, second, denominator = _like_pair(rng, difficulty, subtract=False)
    top = first + second
    total = Fraction(top, denominator)
    answer = fraction_text(total)
    # Adding the denominators too is the error this question is here to catch.
    distractors = [
        written(top, 2 * denominator),
        written(top + 1, denominator),
        written(top - 1, denominator),
        written(top, denominator + 1),
        written(top + 2, denominator),
        written(first * second, denominator),
    ]
    return item(
        f"{first}/{denominator} + {second}/{denominator} = ?",
        answer,
        f"Add the numerators and keep the denominator (the denominators are not added): {answer}.",
        choices=with_choices(rng, answer, [d for d in distractors if Fraction(d) != total]),
    )


def add_like_words(rng: random.Random, difficulty: int) -> Item:
    first, second, denominator = _like_pair(rng, min(difficulty, 2), subtract=False)
    total = Fraction(first + second, denominator)
    name, other = rng.sample(NAMES, 2)
    return item(
        f"A pizza is cut into {denominator} equal slices. {name} eats {first}/{denominator} of the pizza and "
        f"{other} eats {second}/{denominator} of it. What fraction of the pizza do they eat together?",
        fraction_text(total),
        _keep_denominator(first + second, denominator, "Add"),
    )


def sub_like(rng: random.Random, difficulty: int) -> Item:
    first, second, denominator = _like_pair(rng, difficulty, subtract=True)
    difference = Fraction(first - second, denominator)
    return item(
        f"{first}/{denominator} - {second}/{denominator} = ?",
        fraction_text(difference),
        _keep_denominator(first - second, denominator, "Subtract"),
    )


def sub_like_choice(rng: random.Random, difficulty: int) -> Item:
    first, second, denominator = _like_pair(rng, difficulty, subtract=True)
    top = first - second
    difference = Fraction(top, denominator)
    answer = fraction_text(difference)
    # Adding instead of subtracting, and halving the denominator, are the slips offered.
    distractors = [
        written(first + second, denominator),
        written(top + 1, denominator),
        written(top, 2 * denominator),
        written(top + 2, denominator),
        written(top + 3, denominator),
    ]
    return item(
        f"{first}/{denominator} - {second}/{denominator} = ?",
        answer,
        _keep_denominator(top, denominator, "Subtract"),
        choices=with_choices(rng, answer, [d for d in distractors if Fraction(d) != difference]),
    )


def sub_like_words(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([4, 5, 8, 10])
    first = rng.randint(2, denominator - 1)
    second = rng.randint(1, first - 1)
    difference = Fraction(first - second, denominator)
    name = rng.choice(NAMES)
    return item(
        f"{name} has {first}/{denominator} of a litre of juice and drinks {second}/{denominator} of a litre. "
        f"How much juice is left, in litres?",
        fraction_text(difference),
        f"{first}/{denominator} - {second}/{denominator} = {first - second}/{denominator}"
        f"{'' if math.gcd(first - second, denominator) == 1 else ' = ' + fraction_text(difference)} of a "
        "litre.",
    )


def _unlike_pair(rng: random.Random, difficulty: int, subtract: bool) -> tuple[Fraction, Fraction]:
    while True:
        if difficulty == 1:
            small = rng.choice([2, 3, 4, 5])
            first_denominator, second_denominator = small, small * rng.choice([2, 3])
        elif difficulty == 2:
            first_denominator, second_denominator = rng.sample([2, 3, 5, 7], 2)
        else:
            first_denominator, second_denominator = rng.sample([4, 6, 8, 9, 10, 12], 2)
            if math.gcd(first_denominator, second_denominator) == 1:
                continue
        first = random_fraction(rng, [first_denominator])
        second = random_fraction(rng, [second_denominator])
        if first.denominator != first_denominator or second.denominator != second_denominator:
            continue
        if subtract and first <= second:
            first, second = second, first
            if first == second:
                continue
        return first, second


def _common_form(first: Fraction, second: Fraction) -> tuple[int, str, str]:
    common = first.denominator * second.denominator // math.gcd(first.denominator, second.denominator)
    return (
        common,
        written(first.numerator * common // first.denominator, common),
        written(second.numerator * common // second.denominator, common),
    )


def add_unlike(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, difficulty, subtract=False)
    total = first + second
    common, a, b = _common_form(first, second)
    return item(
        f"{fraction_text(first)} + {fraction_text(second)} = ?",
        fraction_text(total),
        f"Over the common denominator {common}: {a} + {b} = "
        f"{total.numerator * common // total.denominator}/{common}"
        f"{'' if total.denominator == common else ' = ' + fraction_text(total)}.",
    )


def add_unlike_choice(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, difficulty, subtract=False)
    total = first + second
    answer = fraction_text(total)
    naive = written(first.numerator + second.numerator, first.denominator + second.denominator)
    distractors = [
        naive,
        written(first.numerator + second.numerator, first.denominator * second.denominator),
        fraction_text(total + Fraction(1, total.denominator)),
        fraction_text(total - Fraction(1, total.denominator)),
        written(first.numerator * second.numerator, first.denominator + second.denominator),
    ]
    distractors = [d for d in distractors if Fraction(d) != total]
    return item(
        f"{fraction_text(first)} + {fraction_text(second)} = ?",
        answer,
        f"Rewrite both over a common denominator before adding the numerators: the sum is {answer}, not {naive}.",
        choices=with_choices(rng, answer, distractors),
    )


def add_unlike_words(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, min(difficulty, 2), subtract=False)
    total = first + second
    name = rng.choice(NAMES)
    return item(
        f"{name} walks {fraction_text(first)} of a kilometre to the park and then {fraction_text(second)} of "
        "a kilometre to school. "
        f"How far does {name} walk in all, in kilometres?",
        fraction_text(total),
        f"{fraction_text(first)} + {fraction_text(second)} = {fraction_text(total)} km, using a common denominator.",
    )


def sub_unlike(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, difficulty, subtract=True)
    difference = first - second
    common, a, b = _common_form(first, second)
    top = difference.numerator * common // difference.denominator
    return item(
        f"{fraction_text(first)} - {fraction_text(second)} = ?",
        fraction_text(difference),
        f"Over the common denominator {common}: {a} - {b} = {top}/{common}"
        f"{'' if difference.denominator == common else ' = ' + fraction_text(difference)}.",
    )


def sub_unlike_choice(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, difficulty, subtract=True)
    difference = first - second
    answer = fraction_text(difference)
    naive_top = abs(first.numerator - second.numerator)
    distractors = [
        written(naive_top or 1, abs(first.denominator - second.denominator) or 1),
        written(naive_top or 1, first.denominator * second.denominator),
        fraction_text(difference + Fraction(1, difference.denominator)),
        fraction_text(first + second),
    ]
    distractors = [d for d in [*distractors, fraction_text(difference * 2)] if Fraction(d) != difference]
    return item(
        f"{fraction_text(first)} - {fraction_text(second)} = ?",
        answer,
        f"Rewrite both over a common denominator before subtracting the numerators: {answer}.",
        choices=with_choices(rng, answer, distractors),
    )


def sub_unlike_words(rng: random.Random, difficulty: int) -> Item:
    first, second = _unlike_pair(rng, min(difficulty, 2), subtract=True)
    difference = first - second
    return item(
        f"A tank is {fraction_text(first)} full. After watering the garden it is {fraction_text(second)} full. "
        f"What fraction of the tank was used?",
        fraction_text(difference),
        f"{fraction_text(first)} - {fraction_text(second)} = {fraction_text(difference)}, using a common denominator.",
    )


def to_mixed(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice({1: [2, 3, 4], 2: [3, 4, 5, 6, 8], 3: [6, 7, 8, 9, 12]}[difficulty])
    whole = rng.randint(1, {1: 3, 2: 5, 3: 9}[difficulty])
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    value = whole + Fraction(numerator, denominator)
    improper = written(value.numerator, value.denominator)
    return item(
        f"Write {improper} as a mixed number.",
        mixed_text(value),
        f"{value.numerator} ÷ {denominator} = {whole} remainder {numerator}, so {improper} = {mixed_text(value)}.",
        answer_format="mixed",
    )


def to_improper(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice({1: [2, 3, 4], 2: [3, 4, 5, 6, 8], 3: [6, 7, 8, 9, 12]}[difficulty])
    whole = rng.randint(1, {1: 3, 2: 5, 3: 9}[difficulty])
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    value = whole + Fraction(numerator, denominator)
    improper = written(value.numerator, value.denominator)
    return item(
        f"Write {mixed_text(value)} as an improper fraction.",
        improper,
        f"{whole} × {denominator} + {numerator} = {value.numerator}, over {denominator}: {improper}.",
        answer_format="fraction",
    )


def mixed_choice(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8])
    whole = rng.randint(2, 6)
    numerator = rng.randint(1, denominator - 1)
    while math.gcd(numerator, denominator) != 1:
        numerator = rng.randint(1, denominator - 1)
    value = whole + Fraction(numerator, denominator)
    answer = mixed_text(value)
    distractors = [
        f"{whole + 1} {numerator}/{denominator}",
        f"{whole} {denominator - numerator}/{denominator}",
        f"{whole - 1} {numerator}/{denominator}",
        f"{numerator} {whole}/{denominator}",
    ]
    distractors = [d for d in distractors if d != answer and int(d.split()[1].split("/")[0]) < denominator]
    return item(
        f"Which mixed number equals {value.numerator}/{denominator}?",
        answer,
        f"{value.numerator} ÷ {denominator} = {whole} remainder {numerator}, so it is {answer}.",
        choices=with_choices(rng, answer, distractors + [f"{whole} {numerator}/{denominator + 1}"]),
    )


def mult_fraction_whole(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8])
    numerator = rng.randint(1, denominator - 1)
    whole = rng.randint(2, 5)
    product = whole * Fraction(numerator, denominator)
    return item(
        f"{whole} × {numerator}/{denominator} = ?",
        fraction_text(product),
        f"{whole} × {numerator}/{denominator} = {whole * numerator}/{denominator}"
        f"{'' if product.denominator == denominator else ' = ' + fraction_text(product)}.",
    )


def mult_fractions(rng: random.Random, difficulty: int) -> Item:
    denominators = {1: [2, 3, 4, 5], 2: [3, 4, 5, 6, 8], 3: [4, 6, 8, 9, 10, 12]}[difficulty]
    first, second = random_fraction(rng, denominators), random_fraction(rng, denominators, proper=difficulty < 3)
    product = first * second
    top, bottom = first.numerator * second.numerator, first.denominator * second.denominator
    return item(
        f"{fraction_text(first)} × {fraction_text(second)} = ?",
        fraction_text(product),
        f"Multiply the numerators and the denominators: {top}/{bottom}"
        f"{'' if math.gcd(top, bottom) == 1 else ' = ' + fraction_text(product)}.",
    )


def mult_fractions_choice(rng: random.Random, difficulty: int) -> Item:
    denominators = {1: [2, 3, 4, 5], 2: [3, 4, 5, 6, 8], 3: [4, 6, 8, 9, 10, 12]}[difficulty]
    while True:
        first, second = random_fraction(rng, denominators), random_fraction(rng, denominators)
        if first.denominator != second.denominator:
            break
    product = first * second
    answer = fraction_text(product)
    # Cross-multiplying, or adding, instead of multiplying straight across.
    distractors = [
        written(first.numerator * second.denominator, first.denominator * second.numerator),
        fraction_text(first + second),
        written(first.numerator * second.numerator, first.denominator + second.denominator),
        written(first.numerator + second.numerator, first.denominator * second.denominator),
    ]
    distractors = [d for d in distractors if Fraction(d) != product]
    return item(
        f"{fraction_text(first)} × {fraction_text(second)} = ?",
        answer,
        f"Multiply straight across, numerator by numerator and denominator by denominator: {answer}.",
        choices=with_choices(rng, answer, distractors),
    )


def _proper_numerator(rng: random.Random, denominator: int, *, unit: bool = False) -> int:
    """A numerator in lowest terms: "3/6 of the sheep" is not how anyone says it."""
    if unit:
        return 1
    return rng.choice(
        [n for n in range(1, denominator) if math.gcd(n, denominator) == 1 and (n > 1 or denominator == 2)]
    )


def _fraction_of_explanation(numerator: int, denominator: int, quantity: int, unit: str = "") -> str:
    share = quantity // denominator
    suffix = f" {unit}" if unit else ""
    if numerator == 1:
        return f"1/{denominator} of {quantity} is {quantity} ÷ {denominator} = {share}{suffix}."
    return (
        f"{numerator}/{denominator} of {quantity}: {quantity} ÷ {denominator} = {share}, "
        f"and {share} × {numerator} = {share * numerator}{suffix}."
    )


def fraction_of(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.randint(2 if difficulty == 1 else 3, {1: 5, 2: 9, 3: 12}[difficulty])
    numerator = _proper_numerator(rng, denominator, unit=difficulty == 1)
    quantity = denominator * rng.randint(2, {1: 9, 2: 9, 3: 12}[difficulty])
    result = quantity * numerator // denominator
    return item(
        f"What is {numerator}/{denominator} of {quantity}?",
        str(result),
        _fraction_of_explanation(numerator, denominator, quantity),
        extra_skills=("div-facts",) if difficulty == 1 else (),
    )


def fraction_of_words(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8])
    numerator = _proper_numerator(rng, denominator, unit=difficulty == 1)
    quantity = denominator * rng.randint(3, 8 if difficulty < 3 else 15)
    result = quantity * numerator // denominator
    body, unit = rng.choice(
        [
            (
                f"A class has {quantity} pupils and {numerator}/{denominator} of them walk to school. "
                "How many pupils walk to school?",
                "pupils",
            ),
            (
                f"A farmer has {quantity} sheep and sells {numerator}/{denominator} of them. "
                "How many sheep does the farmer sell?",
                "sheep",
            ),
            (
                f"A book has {quantity} pages. Lena has read {numerator}/{denominator} of it. How many pages has she "
                "read?",
                "pages",
            ),
        ]
    )
    return item(body, str(result), _fraction_of_explanation(numerator, denominator, quantity, unit))


def fraction_of_choice(rng: random.Random, difficulty: int) -> Item:
    denominator = rng.choice([3, 4, 5, 6, 8, 10])
    numerator = _proper_numerator(rng, denominator)
    quantity = denominator * rng.randint(3, 9)
    result = quantity * numerator // denominator
    # Stopping after the division is the usual slip, so it is always offered.
    distractors = [
        str(quantity // denominator),
        str(quantity - result),
        str(quantity * numerator),
        str(result + quantity // denominator),
        str(quantity // numerator),
    ]
    return item(
        f"What is {numerator}/{denominator} of {quantity}?",
        str(result),
        _fraction_of_explanation(numerator, denominator, quantity),
        choices=with_choices(rng, str(result), distractors),
    )


def fraction_of_fraction(rng: random.Random, difficulty: int) -> Item:
    first, second = random_fraction(rng, [2, 3, 4]), random_fraction(rng, [3, 4, 5, 6])
    product = first * second
    return item(
        f"A recipe needs {fraction_text(second)} of a cup of sugar. How many cups of sugar are needed for "
        f"{fraction_text(first)} of the recipe?",
        fraction_text(product),
        f"{fraction_text(first)} of {fraction_text(second)} means {fraction_text(first)} × "
        f"{fraction_text(second)} = {fraction_text(product)} of a cup.",
        extra_skills=("frac-multiply",),
    )


# --- decimals -------------------------------------------------------------------------------


def tenths_hundredths_to_decimal(rng: random.Random, difficulty: int) -> Item:
    denominator = 10 if difficulty == 1 else 100
    numerator = rng.randint(*{1: (1, 9), 2: (1, 99), 3: (101, 399)}[difficulty])
    while numerator % 10 == 0:
        numerator += 1
    value = Fraction(numerator, denominator)
    return item(
        f"Write {numerator}/{denominator} as a decimal.",
        decimal_text(value),
        f"{numerator} {'tenths' if denominator == 10 else 'hundredths'} is written {decimal_text(value)}.",
        answer_format="decimal",
    )


def fraction_to_decimal(rng: random.Random, difficulty: int) -> Item:
    value = rng.choice(
        [
            Fraction(1, 2),
            Fraction(1, 4),
            Fraction(3, 4),
            Fraction(1, 5),
            Fraction(2, 5),
            Fraction(3, 5),
            Fraction(4, 5),
            Fraction(1, 20),
            Fraction(3, 20),
            Fraction(7, 25),
            Fraction(9, 50),
            Fraction(1, 8),
        ]
    )
    scale = 100 // value.denominator if 100 % value.denominator == 0 else 1000 // value.denominator
    places = 100 if 100 % value.denominator == 0 else 1000
    return item(
        f"Write {fraction_text(value)} as a decimal.",
        decimal_text(value),
        f"{fraction_text(value)} = {value.numerator * scale}/{places} = {decimal_text(value)}.",
        answer_format="decimal",
        extra_skills=("frac-equiv",),
    )


def decimal_digit(rng: random.Random, difficulty: int) -> Item:
    digits = rng.sample(range(1, 10), 4)
    number = f"{digits[0]}.{digits[1]}{digits[2]}{digits[3]}"
    place = rng.choice(["tenths", "hundredths", "thousandths"] if difficulty > 1 else ["tenths", "hundredths"])
    digit = digits[{"tenths": 1, "hundredths": 2, "thousandths": 3}[place]]
    return item(
        f"What digit is in the {place} place of {number}?",
        str(digit),
        f"After the decimal point come the tenths, hundredths and thousandths places; the {place} digit of "
        f"{number} is {digit}.",
    )


def decimal_to_fraction(rng: random.Random, difficulty: int) -> Item:
    hundredths = rng.choice([n for n in range(2, 99) if math.gcd(n, 100) > 1 and n % 10])
    value = Fraction(hundredths, 100)
    return item(
        f"Write {decimal_text(value)} as a fraction in simplest form.",
        fraction_text(value),
        f"{decimal_text(value)} = {hundredths}/100 = {fraction_text(value)} after dividing by "
        f"{math.gcd(hundredths, 100)}.",
        answer_format="simplest",
        extra_skills=("frac-simplify",),
    )


def greatest_decimal(rng: random.Random, difficulty: int) -> Item:
    a, b = rng.sample(range(1, 10), 2)
    # Same digits at different places: longer is not larger, the classic decimal misconception.
    if difficulty > 1:
        texts = [f"0.{a}", f"0.{b}{a}", f"0.0{a}{b}", f"0.{a}0{b}"]
    else:
        texts = [f"0.{a}", f"0.{b}", f"0.{a}{b}", f"0.0{b}"]
    values = [Fraction(text) for text in texts]
    if len(set(values)) < 4:
        texts = [f"0.{a}", f"0.0{a}", f"0.{a}{a}", f"0.00{a}"]
        values = [Fraction(text) for text in texts]
    best = texts[values.index(max(values))]
    return item(
        "Which of these decimals is the greatest?",
        best,
        f"Compare tenths first, then hundredths: {best} is the greatest.",
        choices=with_choices(rng, best, [text for text in texts if text != best]),
    )


def _tenths(count: int) -> str:
    return f"{count} tenth{'' if count == 1 else 's'}"


def decimal_add_tenths(rng: random.Random, difficulty: int) -> Item:
    first, second = rng.randint(1, 9), rng.randint(1, 9)
    whole = rng.randint(0, 3 if difficulty < 3 else 9)
    a, b = whole + Fraction(first, 10), Fraction(second, 10)
    total = a + b
    return item(
        f"{decimal_text(a)} + {decimal_text(b)} = ?",
        decimal_text(total),
        f"{_tenths(first)} and {_tenths(second)} make {_tenths(first + second)}: {decimal_text(a)} + "
        f"{decimal_text(b)} = {decimal_text(total)}.",
    )


# --- course plan ----------------------------------------------------------------------------

# Per skill: (template, difficulty) in item order. About a quarter of items are multiple choice.
PLAN: dict[str, list[tuple[Template, int]]] = {
    "place-value": [
        (place_digit, 1),
        (place_digit, 2),
        (place_value_of_digit, 1),
        (place_choice, 1),
        (place_expanded, 1),
        (place_digit, 3),
        (place_value_of_digit, 2),
        (place_choice, 2),
        (place_expanded, 2),
        (place_value_of_digit, 3),
        (place_expanded, 3),
        (place_choice, 3),
        (times_power_of_ten, 2),
        (times_power_of_ten, 3),
    ],
    "compare-numbers": [
        (compare_symbol, 1),
        (compare_symbol, 1),
        (compare_extreme, 1),
        (compare_symbol, 1),
        (compare_symbol, 2),
        (compare_symbol, 2),
        (compare_extreme, 2),
        (compare_symbol, 2),
        (compare_symbol, 3),
        (compare_symbol, 3),
        (compare_extreme, 3),
        (compare_symbol, 3),
    ],
    "add-no-carry": [
        (add_plain, 1),
        (add_plain, 1),
        (add_plain_choice, 1),
        (add_plain_words, 1),
        (add_plain, 2),
        (add_plain, 2),
        (add_plain_choice, 2),
        (add_plain_words, 2),
        (add_plain, 3),
        (add_plain, 3),
        (add_plain_choice, 3),
        (add_plain_words, 3),
    ],
    "add-carry": [
        (add_with_carry, 1),
        (add_with_carry, 1),
        (add_carry_choice, 1),
        (add_with_carry, 1),
        (add_with_carry, 2),
        (add_with_carry, 2),
        (add_carry_choice, 2),
        (add_carry_words, 2),
        (add_with_carry, 3),
        (add_with_carry, 3),
        (add_carry_choice, 3),
        (add_carry_words, 3),
    ],
    "sub-no-borrow": [
        (sub_plain, 1),
        (sub_plain, 1),
        (sub_plain_choice, 1),
        (sub_plain_words, 1),
        (sub_plain, 2),
        (sub_plain, 2),
        (sub_plain_choice, 2),
        (sub_plain_words, 2),
        (sub_plain, 3),
        (sub_plain, 3),
        (sub_plain_choice, 3),
        (sub_plain_words, 3),
    ],
    "sub-borrow": [
        (sub_with_borrow, 1),
        (sub_with_borrow, 1),
        (sub_borrow_choice, 1),
        (sub_with_borrow, 1),
        (sub_with_borrow, 2),
        (sub_with_borrow, 2),
        (sub_borrow_choice, 2),
        (sub_borrow_words, 2),
        (sub_with_borrow, 3),
        (sub_with_borrow, 3),
        (sub_borrow_choice, 3),
        (sub_borrow_words, 3),
    ],
    "mult-facts": [
        (mult_fact, 1),
        (mult_fact, 1),
        (mult_fact_choice, 1),
        (mult_fact_missing, 1),
        (mult_fact, 2),
        (mult_fact, 2),
        (mult_fact_choice, 2),
        (mult_fact_missing, 2),
        (mult_fact, 3),
        (mult_fact, 3),
        (mult_fact_choice, 3),
        (mult_fact_missing, 3),
    ],
    "mult-multi-digit": [
        (mult_by_one_digit, 1),
        (mult_by_one_digit, 1),
        (mult_multi_choice, 1),
        (mult_words, 1),
        (mult_by_one_digit, 2),
        (mult_by_one_digit, 2),
        (mult_multi_choice, 2),
        (mult_words, 2),
        (mult_two_by_two, 3),
        (mult_two_by_two, 3),
        (mult_multi_choice, 3),
        (mult_words, 3),
    ],
    "div-facts": [
        (div_fact, 1),
        (div_fact, 1),
        (div_fact_choice, 1),
        (div_fact_words, 1),
        (div_fact, 2),
        (div_fact, 2),
        (div_fact_choice, 2),
        (div_fact_words, 2),
        (div_fact, 3),
        (div_fact, 3),
        (div_fact_choice, 3),
        (div_fact_words, 3),
    ],
    "long-division": [
        (long_div_exact, 1),
        (long_div_exact, 1),
        (long_div_choice, 1),
        (long_div_remainder, 1),
        (long_div_exact, 2),
        (long_div_exact, 2),
        (long_div_choice, 2),
        (long_div_words, 2),
        (long_div_exact, 3),
        (long_div_remainder, 3),
        (long_div_choice, 3),
        (long_div_words, 3),
    ],
    "factors-gcf": [
        (gcf_pair, 1),
        (gcf_pair, 1),
        (factor_choice, 1),
        (factor_count, 1),
        (gcf_pair, 2),
        (gcf_pair, 2),
        (factor_choice, 2),
        (factor_count, 2),
        (gcf_pair, 3),
        (gcf_pair, 3),
        (factor_choice, 3),
        (factor_count, 3),
    ],
    "multiples-lcm": [
        (lcm_pair, 1),
        (lcm_pair, 1),
        (multiple_choice_of, 1),
        (next_multiple, 1),
        (lcm_pair, 2),
        (lcm_pair, 2),
        (multiple_choice_of, 2),
        (next_multiple, 2),
        (lcm_pair, 3),
        (common_denominator, 2),
        (multiple_choice_of, 3),
        (common_denominator, 3),
    ],
    "frac-equiv": [
        (equiv_missing, 1),
        (equiv_missing, 1),
        (equiv_choice, 1),
        (equiv_missing, 1),
        (equiv_missing, 2),
        (equiv_reverse, 2),
        (equiv_choice, 2),
        (equiv_missing, 2),
        (equiv_missing, 3),
        (equiv_reverse, 3),
        (equiv_choice, 3),
        (equiv_missing, 3),
    ],
    "frac-simplify": [
        (simplify, 1),
        (simplify, 1),
        (simplify_choice, 1),
        (simplify, 1),
        (simplify, 2),
        (simplify, 2),
        (simplify_choice, 2),
        (simplify, 2),
        (simplify, 3),
        (simplify, 3),
        (simplify_choice, 3),
        (simplify, 3),
    ],
    "frac-compare": [
        (compare_fractions, 1),
        (compare_fractions, 1),
        (greatest_fraction, 1),
        (compare_fractions, 1),
        (compare_fractions, 2),
        (compare_fractions, 2),
        (greatest_fraction, 2),
        (compare_fractions, 2),
        (compare_fractions, 3),
        (compare_fractions, 3),
        (greatest_fraction, 3),
        (compare_fractions, 3),
    ],
    "frac-add-like": [
        (add_like, 1),
        (add_like, 1),
        (add_like_choice, 1),
        (add_like_words, 1),
        (add_like, 2),
        (add_like, 2),
        (add_like_choice, 2),
        (add_like_words, 2),
        (add_like, 3),
        (add_like, 3),
        (add_like_choice, 3),
        (add_like, 3),
    ],
    "frac-sub-like": [
        (sub_like, 1),
        (sub_like, 1),
        (sub_like_choice, 1),
        (sub_like_words, 1),
        (sub_like, 2),
        (sub_like, 2),
        (sub_like_choice, 2),
        (sub_like_words, 2),
        (sub_like, 3),
        (sub_like, 3),
        (sub_like_choice, 3),
        (sub_like, 3),
    ],
    "frac-add-unlike": [
        (add_unlike, 1),
        (add_unlike, 1),
        (add_unlike_choice, 1),
        (add_unlike_words, 1),
        (add_unlike, 2),
        (add_unlike, 2),
        (add_unlike_choice, 2),
        (add_unlike_words, 2),
        (add_unlike, 3),
        (add_unlike, 3),
        (add_unlike_choice, 3),
        (add_unlike, 3),
    ],
    "frac-sub-unlike": [
        (sub_unlike, 1),
        (sub_unlike, 1),
        (sub_unlike_choice, 1),
        (sub_unlike_words, 1),
        (sub_unlike, 2),
        (sub_unlike, 2),
        (sub_unlike_choice, 2),
        (sub_unlike_words, 2),
        (sub_unlike, 3),
        (sub_unlike, 3),
        (sub_unlike_choice, 3),
        (sub_unlike, 3),
    ],
    "mixed-numbers": [
        (to_mixed, 1),
        (to_improper, 1),
        (mixed_choice, 1),
        (to_mixed, 1),
        (to_mixed, 2),
        (to_improper, 2),
        (mixed_choice, 2),
        (to_improper, 2),
        (to_mixed, 3),
        (to_improper, 3),
        (mixed_choice, 3),
        (to_mixed, 3),
    ],
    "frac-multiply": [
        (mult_fraction_whole, 1),
        (mult_fraction_whole, 1),
        (mult_fractions_choice, 1),
        (mult_fractions, 1),
        (mult_fractions, 2),
        (mult_fractions, 2),
        (mult_fractions_choice, 2),
        (mult_fraction_whole, 2),
        (mult_fractions, 3),
        (mult_fractions, 3),
        (mult_fractions_choice, 3),
        (mult_fractions, 3),
    ],
    "frac-of-quantity": [
        (fraction_of, 1),
        (fraction_of, 1),
        (fraction_of_choice, 1),
        (fraction_of_words, 1),
        (fraction_of, 2),
        (fraction_of, 2),
        (fraction_of_choice, 2),
        (fraction_of_words, 2),
        (fraction_of, 3),
        (fraction_of_fraction, 3),
        (fraction_of_choice, 3),
        (fraction_of_words, 3),
    ],
    "decimals-basics": [
        (tenths_hundredths_to_decimal, 1),
        (decimal_digit, 1),
        (greatest_decimal, 1),
        (decimal_add_tenths, 1),
        (tenths_hundredths_to_decimal, 2),
        (fraction_to_decimal, 2),
        (greatest_decimal, 2),
        (decimal_digit, 2),
        (tenths_hundredths_to_decimal, 3),
        (decimal_to_fraction, 3),
        (greatest_decimal, 3),
        (decimal_to_fraction, 2),
    ],
}


def skill_rng(skill: str) -> random.Random:
    """A random stream per skill: editing one skill's plan leaves the others' items unchanged."""
    return random.Random(SEED * 1_000_003 + zlib.crc32(skill.encode()))


def build_items(skill: str) -> list[Item]:
    """The items of one skill, in plan order, with ids ``<skill>-01``, ``<skill>-02``, ..."""
    rng = skill_rng(skill)
    items: list[Item] = []
    # Multiple-choice questions may share a body ("Which is the greatest?") and differ in their choices.
    seen: set[tuple[str, frozenset[str]]] = set()
    for template, difficulty in PLAN[skill]:
        for _ in range(50):
            drawn = template(rng, difficulty)
            generic_body = not any(character.isdigit() for character in drawn["body"])
            key = (drawn["body"], frozenset(drawn["choices"] or ()) if generic_body else frozenset())
            if key not in seen:
                break
        else:
            raise RuntimeError(f"{template.__name__} keeps repeating a question for {skill}")
        seen.add(key)
        extra = [other for other in drawn.pop("extra_skills") if other != skill]
        record: Item = {
            "id": f"{skill}-{len(items) + 1:02d}",
            "skills": [skill, *extra],
            "body": drawn["body"],
            "answer": drawn["answer"],
            "choices": drawn["choices"],
            "explanation": drawn["explanation"],
            "difficulty": difficulty,
        }
        if "answer_format" in drawn:
            record["answer_format"] = drawn["answer_format"]
        items.append(record)
    return items


def build_document() -> dict:
    """The whole curriculum document: course, skills, items and prerequisite edges."""
    return {
        "course": dict(COURSE),
        "skills": [
            {"id": skill, "name": name, "description": description, "khan_exercises": KHAN_EXERCISES[skill]}
            for skill, name, description in SKILLS
        ],
        "items": [entry for skill, _, _ in SKILLS for entry in build_items(skill)],
        "prerequisites": [{"from": source, "to": target} for source, target in PREREQUISITES],
    }


def render(document: dict) -> str:
    """The document as committed: two-space indented JSON, UTF-8 symbols kept, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs from a fresh build")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    arguments = parser.parse_args(argv)
    text = render(build_document())
    if arguments.check:
        current = arguments.output.read_text(encoding="utf-8") if arguments.output.exists() else ""
        if current != text:
            sys.stderr.write(f"{arguments.output} is stale; run {Path(__file__).name} to rebuild it\n")
            return 1
        return 0
    arguments.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
