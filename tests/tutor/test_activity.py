"""The dashboard's counts come from sums kept with the answers (tutor.activity, issue 18): they must equal
counting the answers themselves, after answers recorded one by one or at once, a file import and its
re-import, and an erasure."""

from __future__ import annotations

import re
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate

from tests.threads import THREADS, postgresql, together  # noqa: F401
from tests.tutor.api_support import course_with_curriculum
from tests.tutor.conftest import answers_simulate
from tutor.actions import answers_import, answers_record
from tutor.activity import activity_fold, activity_rebuild, live_part
from tutor.lti.classes import teaching_scope
from tutor.models import DayActivity, Interaction, ItemActivity, Learner, LearnerActivity
from tutor.privacy import learner_erase
from tutor.web import dashboard
from tutor.web.learners import _last_answers


def per_day(course, moment: str = "timestamp") -> dict[date, tuple[int, float]]:
    rows = (
        Interaction.objects.filter(course=course)
        .annotate(day=TruncDate(moment))
        .values_list("day")
        .annotate(n=Count("id"), correct=Sum("correct"))
    )
    return {day: (n, correct) for day, n, correct in rows}


def most_active(course, limit: int) -> list[str]:
    """The old heatmap's rule: most answers first, then learner id."""
    return list(
        Learner.objects.filter(course=course)
        .annotate(answers=Count("interactions"))
        .order_by("-answers", "external_id")
        .values_list("external_id", flat=True)[:limit]
    )


def sums_stored(course) -> dict[str, dict]:
    """The sums as stored (parts added up), and as counted from the answers."""
    learners = {
        row.learner_id: (row.answers, pytest.approx(row.correct), row.last_timestamp, row.last_stored)
        for row in LearnerActivity.objects.filter(course=course)
    }
    items = {
        item: (n, pytest.approx(correct))
        for item, n, correct in ItemActivity.objects.filter(course=course)
        .values_list("item")
        .annotate(n=Sum("answers"), total=Sum("correct"))
        if n
    }
    days = {
        (clock, day): (n, pytest.approx(correct))
        for clock, day, n, correct in DayActivity.objects.filter(course=course)
        .values_list("clock", "day")
        .annotate(n=Sum("answers"), total=Sum("correct"))
        if n
    }
    return {"learners": learners, "items": items, "days": days}


def sums_counted(course) -> dict[str, dict]:
    answers = Interaction.objects.filter(course=course).order_by()
    return {
        "learners": {
            learner: (n, correct, last, stored)
            for learner, n, correct, last, stored in answers.values_list("learner").annotate(
                n=Count("id"), total=Sum("correct"), last=Max("timestamp"), stored=Max("created_at")
            )
        },
        "items": {
            item: (n, correct)
            for item, n, correct in answers.values_list("item").annotate(n=Count("id"), total=Sum("correct"))
        },
        "days": {
            **{(True, day): value for day, value in per_day(course).items()},
            **{(False, day): value for day, value in per_day(course, "created_at").items()},
        },
    }


def assert_sums_match(course) -> None:
    assert sums_stored(course) == sums_counted(course)


def assert_dashboard_counts_equal_the_answers(course) -> None:
    assert_sums_match(course)
    answers = Interaction.objects.filter(course=course)
    totals = answers.aggregate(n=Count("id"), correct=Sum("correct"))
    counts = dashboard.course_counts(course=course)
    assert counts["interactions"] == totals["n"]
    assert counts["correct_share"] == pytest.approx(totals["correct"] / totals["n"])
    assert counts["learners"] == Learner.objects.filter(course=course).count()
    overview = {row["course"].pk: row for row in dashboard.courses_overview()}[course.pk]
    assert overview["interactions"] == totals["n"]
    assert overview["last_activity"] == answers.aggregate(last=Max("created_at"))["last"]

    days = per_day(course)
    activity = dashboard.activity(course=course)
    assert activity.bucket == "day" and sum(activity.totals) == totals["n"]
    first = min(days)
    for offset, (total, correct) in enumerate(zip(activity.totals, activity.correct)):
        expected = days.get(first + timedelta(days=offset), (0, 0.0))
        assert total == expected[0] and correct == pytest.approx(expected[1])

    matrix = dashboard.mastery_matrix(course=course, limit=5)
    assert [learner.external_id for learner in matrix.learners] == most_active(course, 5)

    stats = {
        item: (n, correct)
        for item, n, correct in answers.values_list("item").annotate(n=Count("id"), correct=Sum("correct"))
    }
    for row in dashboard.item_table(course=course, fit=None)["items"]:
        n, correct = stats.get(row["item"].pk, (0, None))
        assert row["answers"] == n
        assert row["correct_share"] == (pytest.approx(correct / n) if n else None)

    learner_pks = list(Learner.objects.filter(course=course).values_list("pk", flat=True))
    last = _last_answers(course, learner_pks)
    for pk in learner_pks:
        mine = Interaction.objects.filter(learner_id=pk).aggregate(n=Count("id"), last=Max("timestamp"))
        if mine["n"]:
            assert last[pk] == (mine["n"], mine["last"])
        else:
            assert pk not in last or last[pk][0] == 0


@pytest.fixture
def answered_course(demo_course):
    # Learners are created in id order, so ties in their counts break the same way by id or by row number.
    answers_simulate(demo_course, learners=9, answers=12, start=datetime(2026, 3, 1, 20, tzinfo=UTC))
    for extra in range(4):  # distinct counts at the top
        answers_simulate(
            demo_course, learners=extra + 1, answers=3, seed=extra + 1, start=datetime(2026, 3, 2, tzinfo=UTC)
        )
    return demo_course


def test_dashboard_counts_equal_counting_the_answers(answered_course):
    assert_dashboard_counts_equal_the_answers(answered_course)


def test_dashboard_counts_follow_an_erasure(answered_course):
    learner_erase(course=answered_course, external_id="sim-00", confirm="sim-00")
    assert_dashboard_counts_equal_the_answers(answered_course)


def _csv(tmp_path, rows: int, learners: int):
    path = tmp_path / "answers.csv"
    start = datetime(2026, 4, 1, 22, tzinfo=UTC)
    lines = ["learner,item,skill,correct,timestamp"]
    for number in range(rows):
        moment = start + timedelta(hours=5 * number)
        lines.append(f"f{number % learners},i{number % 7},s{number % 3},{number % 2},{int(moment.timestamp())}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dashboard_counts_equal_the_answers_after_an_import_and_its_reimport(db, tmp_path):
    path = _csv(tmp_path, rows=120, learners=11)
    answers_import(course_slug="imported", path=path, format="csv")
    from curriculum.models import Course

    course = Course.objects.get(slug="imported")
    assert_dashboard_counts_equal_the_answers(course)
    summary = answers_import(course_slug="imported", path=path, format="csv")
    assert summary["created"] == 0
    assert_dashboard_counts_equal_the_answers(course)
    answers_record(
        course=course, rows=[{"learner": "f1", "item": "i1", "correct": 1, "timestamp": "2026-04-20T23:30:00Z"}]
    )
    assert_dashboard_counts_equal_the_answers(course)


def test_a_teachers_counts_cover_their_learners_only(answered_course, django_user_model):
    staff = django_user_model.objects.create_user(username="boss", is_staff=True)
    scope = teaching_scope(user=staff, course=answered_course)
    chosen = Learner.objects.filter(course=answered_course, external_id__in=["sim-01", "sim-03"])
    counts = dashboard.course_counts(course=answered_course, learners=chosen)
    expected = Interaction.objects.filter(learner__in=chosen).aggregate(n=Count("id"))["n"]
    assert counts["interactions"] == expected and counts["learners"] == 2
    assert scope is not None


@pytest.mark.django_db(transaction=True)
def test_answers_at_once_lose_no_count(postgresql):  # noqa: F811
    """Eight threads answer the same items on the same day, some for the same learner, while a ninth
    imports a file into the course: every answer is counted once (the shared item and day rows are
    upserts that add), the import's part is folded into part 0 once it commits, and no thread waits
    on the import's rows."""
    course = course_with_curriculum("counted")
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)

    def work(number: int) -> None:
        if number == THREADS - 1:
            lines = ["learner,item,skill,correct,timestamp"] + [
                f"file-{n % 13},{['q1', 'q2'][n % 2]},add,{n % 2},{int((start + timedelta(minutes=n)).timestamp())}"
                for n in range(400)
            ]
            path = Path(tempfile.mkdtemp()) / "answers.csv"
            path.write_text("\n".join(lines) + "\n")
            answers_import(course_slug="counted", path=path, format="csv")
            return
        for step in range(6):
            answers_record(
                course=course,
                rows=[
                    {
                        "learner": f"t{number % 3}",  # three learners shared by the threads
                        "item": ["q1", "q2"][step % 2],
                        "correct": (number + step) % 2,
                        "timestamp": (start + timedelta(seconds=number * 10 + step)).isoformat(),
                    }
                ],
            )

    together(work, THREADS)
    assert Interaction.objects.filter(course=course).count() == (THREADS - 1) * 6 + 400
    assert_sums_match(course)
    assert not ItemActivity.objects.filter(course=course, part__gt=0).exists()  # the import's part was folded
    assert not DayActivity.objects.filter(course=course, part__gt=0).exists()


@pytest.mark.django_db(transaction=True)
def test_an_import_part_not_folded_still_adds_up_and_a_rebuild_agrees(postgresql, tmp_path):  # noqa: F811
    from curriculum.models import Course

    with mock.patch("tutor.importing.activity_fold"):  # the process died before folding
        answers_import(course_slug="unfolded", path=_csv(tmp_path, rows=60, learners=7), format="csv")
    course = Course.objects.get(slug="unfolded")
    assert ItemActivity.objects.filter(course=course, part__gt=0).exists()
    assert_dashboard_counts_equal_the_answers(course)
    answers_record(
        course=course, rows=[{"learner": "f2", "item": "i3", "correct": 1, "timestamp": "2026-04-05T10:00Z"}]
    )
    learner_erase(course=course, external_id="f1", confirm="f1")
    assert_sums_match(course)
    activity_fold(course_pk=course.pk)
    assert not ItemActivity.objects.filter(course=course, part__gt=0).exists()
    assert_dashboard_counts_equal_the_answers(course)
    before = sums_stored(course)
    activity_rebuild(course_pk=course.pk)
    assert sums_stored(course) == before


def test_the_heatmap_names_learners_from_the_roster(answered_course):
    from tutor.lti.classes import class_member_put
    from tutor.lti.models import CourseClass

    group = CourseClass.objects.create(course=answered_course, name="Group", source=CourseClass.STAFF)
    top = most_active(answered_course, 1)[0]
    class_member_put(course_class=group, external_id=top, name="Ada Lovelace")
    matrix = dashboard.mastery_matrix(course=answered_course, limit=3)
    assert matrix.names[0] == "Ada Lovelace" and matrix.names[1:] == [each.external_id for each in matrix.learners[1:]]


def test_staff_see_every_learner_a_page_at_a_time(client, staff_user, demo_course):
    from django.urls import reverse

    from tutor.lti.classes import ROSTER_PAGE, class_member_put
    from tutor.lti.models import CourseClass

    Learner.objects.bulk_create(
        Learner(course=demo_course, external_id=f"L{n:03d}") for n in range(2 * ROSTER_PAGE + 7)
    )
    group = CourseClass.objects.create(course=demo_course, name="Group", source=CourseClass.STAFF)
    named = f"L{ROSTER_PAGE + 3:03d}"
    class_member_put(course_class=group, external_id=named, name="aaron")  # sorts first, by name
    class_member_put(course_class=group, external_id="not-yet", name="zed")  # on the roster, not started
    client.force_login(staff_user)
    url, seen, pages = reverse("dashboard_learners", args=[demo_course.slug]), [], 0
    query = ""
    while True:
        html = client.get(f"{url}?{query}").content.decode()
        pages += 1
        seen += re.findall(r'<td class="small muted">([^<]+)</td>', html)
        found = re.search(r'href="\?([^"]+)" rel="next"', html)
        if not found:
            break
        query = found.group(1).replace("&amp;", "&")
    assert pages == 3 and seen[0] == named and seen[-1] == "not-yet"
    assert sorted(seen) == sorted([f"L{n:03d}" for n in range(2 * ROSTER_PAGE + 7)] + ["not-yet"])


def test_a_big_courses_learning_curves_read_its_latest_learners_whole(answered_course):
    from curriculum.models import Item

    counts = dict(
        Interaction.objects.filter(course=answered_course).values_list("learner").annotate(n=Count("id")).order_by()
    )
    chosen, running = [], 0
    for pk in sorted(counts, reverse=True):  # the latest learners until they hold 40 answers
        chosen.append(pk)
        running += counts[pk]
        if running >= 40:
            break
    skills_of: dict[int, list[int]] = {}
    for item, skill in Item.skills.through.objects.filter(item__course=answered_course).values_list("item", "skill"):
        skills_of.setdefault(item, []).append(skill)
    attempts: dict[tuple[int, int], int] = {}
    tally: dict[tuple[int, int], list[float]] = {}
    for learner, item, correct in (
        Interaction.objects.filter(learner__in=chosen)
        .order_by("learner_id", "timestamp", "id")
        .values_list("learner_id", "item_id", "correct")
    ):
        for skill in skills_of[item]:
            attempts[learner, skill] = number = attempts.get((learner, skill), 0) + 1
            if number <= 4:
                entry = tally.setdefault((skill, number), [0, 0.0])
                entry[0] += 1
                entry[1] += 1.0 - correct
    expected: dict[int, list] = {}
    for (skill, number), (count, wrong) in sorted(tally.items()):
        expected.setdefault(skill, []).append((number, pytest.approx(wrong / count), count))
    _, curves = dashboard.course_learning_curves(course=answered_course, max_attempts=4, min_answers=1, max_rows=40)
    assert curves == expected and len(chosen) < len(counts)


@pytest.mark.django_db(transaction=True)
def test_an_answer_on_another_connection_does_not_wait_for_an_open_transaction(postgresql):  # noqa: F811
    """Every answer of a course adds to the course's day row; on one row, an answer waited for every other
    answer's commit (a fit's heavy writes slowed those commits and stalled the whole API for seconds). Live
    answers on another connection now add to another part and go through while the first is still open."""
    course = course_with_curriculum("parts")
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    first_part: list[int] = []

    def row(learner: str, minute: int) -> dict:
        return {
            "learner": learner,
            "item": "q1",
            "correct": 1,
            "timestamp": (at + timedelta(minutes=minute)).isoformat(),
        }

    def first() -> None:
        try:
            with transaction.atomic():
                first_part.append(live_part())
                answers_record(course=course, rows=[row("a", 0)])
                holding.set()
                release.wait(20)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            holding.wait(20)
            for _ in range(64):  # another part: a connection whose backend pid differs mod LIVE_PARTS
                if live_part() != first_part[0]:
                    break
                connection.close()
            answers_record(course=course, rows=[row("b", 1)])
            done.set()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    went_through = done.wait(10)
    release.set()
    for thread in threads:
        thread.join(30)
    assert went_through, "the second answer waited for the first one's transaction"
    assert Interaction.objects.filter(course=course).count() == 2
    assert_sums_match(course)
