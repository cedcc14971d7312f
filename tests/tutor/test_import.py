"""The import command on real files (committed slices) and on malformed input."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curriculum.models import Course, Item, Skill
from tutor.models import Interaction, Learner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.django_db


def run(*args):
    call_command("import_interactions", *map(str, args), "--no-progress")


def test_dkvmn_import_creates_course_items_and_is_idempotent():
    train, test = FIXTURES / "assist2009_train_slice.csv", FIXTURES / "assist2009_test_slice.csv"
    run("--course", "a09", "--format", "dkvmn", train, test)
    course = Course.objects.get(slug="a09")
    expected = sum(len(line.split(",")) for line in train.read_text().splitlines()[1::3]) + sum(
        len(line.split(",")) for line in test.read_text().splitlines()[1::3]
    )
    assert Interaction.objects.filter(course=course).count() == expected
    assert Learner.objects.filter(course=course).count() == 150
    assert not course.has_clock
    run("--course", "a09", "--format", "dkvmn", train)
    assert Interaction.objects.filter(course=course).count() == expected


def test_dbe_import_keeps_questions_and_their_knowledge_components():
    run("--course", "dbe", "--format", "dbe", FIXTURES / "dbe_kt22" / "pyedmine_preprocessed" / "data.txt")
    course = Course.objects.get(slug="dbe")
    assert course.has_clock
    assert Interaction.objects.filter(course=course).count() == 4860
    multi = [item for item in Item.objects.filter(course=course).prefetch_related("skills") if item.skills.count() > 1]
    assert multi and all(s.external_id.startswith("kc") for s in multi[0].skills.all())


def test_pybkt_csv_merges_multi_skill_rows(tmp_path):
    path = tmp_path / "skill_builder.csv"
    path.write_text(
        "order_id,user_id,problem_id,correct,skill_id,skill_name,ms_first_response\n"
        "100,7,501,1,10,Addition,3000\n"
        "101,7,502,0,10,Addition,5000\n"
        "101,7,502,0,11,Subtraction,5000\n"
        "102,8,501,1,10,Addition,1000\n"
        "103,8,503,1,,,1000\n"
    )
    run("--course", "sb", "--format", "pybkt", path)
    course = Course.objects.get(slug="sb")
    assert Interaction.objects.filter(course=course).count() == 3  # the untagged row is skipped like pyBKT does
    assert set(Item.objects.get(course=course, external_id="502").skills.values_list("external_id", flat=True)) == {
        "Addition",
        "Subtraction",
    }
    assert Interaction.objects.get(course=course, client_id="101").response_time == 5.0


def test_plain_csv_with_iso_timestamps(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(
        "learner,item,skill,correct,timestamp\nu1,q1,s1;s2,1,2026-11-25T10:00:00Z\nu1,q2,s2,0.5,1764064860\n"
    )
    run("--course", "plain", "--format", "csv", path)
    course = Course.objects.get(slug="plain")
    assert sorted(Interaction.objects.filter(course=course).values_list("correct", flat=True)) == [0.5, 1.0]
    assert Skill.objects.filter(course=course).count() == 2


@pytest.mark.parametrize(
    "content,line,reason",
    [
        ("2\n1,2\n1,0\n3\n1,2,3\n1,x,0\n", 6, "integers"),
        ("2\n1,2\n1,0\n2\n1,2\n", 5, "ends inside a record"),
        ("2\n1,2\n1,7\n", 3, "[0, 1]"),
    ],
)
def test_malformed_dkvmn_names_file_and_line_and_keeps_nothing(tmp_path, content, line, reason):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(CommandError) as error:
        run("--course", "broken", "--format", "dkvmn", path)
    assert f"broken.csv:{line}:" in str(error.value) and reason in str(error.value)
    assert not Course.objects.filter(slug="broken").exists()
    assert Interaction.objects.count() == 0


def test_second_file_failing_keeps_the_first(tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("2\n1,2\n1,0\n")
    bad.write_text("2\n1,2\n1\n")
    with pytest.raises(CommandError, match="bad.csv:1"):
        run("--course", "mixed", "--format", "dkvmn", good, bad)
    assert Interaction.objects.filter(course__slug="mixed").count() == 2


def test_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match="no such file"):
        run("--course", "x", "--format", "csv", "/nonexistent.csv")
