"""Issue 15, items 1, 2, 8 and 13: every value from outside is checked once, refused with a 4xx, never stored
half-way; a refused value leaves the course working."""

from __future__ import annotations

import base64
import io
import json
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from core.errors import ServiceError
from curriculum.models import Course, Skill
from curriculum.services import CurriculumError, document_validate
from tests.threads import together
from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tracing.models import Fit
from tracing.services import fit_create
from tutor.actions import answers_record
from tutor.api.parsers import BoundedJSONParser
from tutor.api.xapi import ANSWERED
from tutor.keys import api_key_create
from tutor.models import Interaction, Learner
from tutor.services import row_validate

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# Valid as written, but past year 9999 / before year 1 once converted to UTC: what took a course down.
BEYOND_9999 = "9999-12-31T23:00:00-05:00"
BEFORE_YEAR_1 = "0001-01-01T00:30:00+01:00"


@pytest.fixture
def course():
    return course_with_curriculum("bounds")


@pytest.fixture
def api(course):
    return client_for(key_for(course))


def url(course, tail: str = "") -> str:
    return f"/api/v1/courses/{course.slug}{tail}"


def post_raw(api, path: str, body: str | bytes):
    return api.generic("POST", path, body, content_type="application/json")


def answer(step: int = 0, **fields) -> dict:
    return {
        "id": f"ok-{step}",
        "learner": "u1",
        "item": "q1",
        "correct": 1,
        "timestamp": (START + timedelta(minutes=step)).isoformat(),
        **fields,
    }


def statement(**fields) -> dict:
    return {
        "id": "st-1",
        "actor": {"account": {"name": "u1"}},
        "verb": {"id": ANSWERED},
        "object": {"id": "http://example.com/q1"},
        "result": {"success": True},
        **fields,
    }


def assert_course_still_works(course, api, capture, staff) -> None:
    """What broke after one bad timestamp was stored: the learner's list, a later POST, the dashboard, a fit."""
    assert api.get(url(course, "/interactions"), {"learner": "u1"}).status_code == 200
    later = api.post(url(course, "/interactions"), answer(99, id="later"), format="json")
    assert later.status_code == 201, later.content
    assert api.get(url(course, "/interactions"), {"learner": "u1"}).json()["results"]
    assert staff.get(reverse("dashboard_course", args=[course.slug])).status_code == 200
    with capture(execute=True):
        fit = api.post(url(course, "/fits"), {"model": "rate"}, format="json")
    assert fit.status_code == 202
    assert Fit.objects.get(pk=fit.json()["id"]).status == Fit.SUCCEEDED


# --- item 1: timestamps bounded at the one validation point -------------------------------------------


@pytest.mark.parametrize(
    "moment", [BEYOND_9999, BEFORE_YEAR_1, "1969-12-31T23:59:59Z", 1e20, -1, 10**30, "2999-01-01T00:00:00Z"]
)
def test_a_timestamp_outside_the_bounds_is_refused_and_the_course_keeps_working(
    course, api, moment, django_capture_on_commit_callbacks, client, staff_user
):
    single = api.post(url(course, "/interactions"), answer(timestamp=moment), format="json")
    assert single.status_code == 400, single.content
    assert single.json()["code"] in ("invalid_timestamp", "invalid_number")
    if single.json()["code"] == "invalid_timestamp":
        assert single.json()["field"] == "timestamp" and single.json()["index"] == 0
    batch = api.post(url(course, "/interactions"), [answer(0), answer(1), answer(2, timestamp=moment)], format="json")
    assert batch.status_code == 400, batch.content
    xapi = api.post(url(course, "/xapi/statements"), statement(timestamp=moment), format="json")
    assert xapi.status_code == 400, xapi.content
    assert Interaction.objects.count() == 0 and Learner.objects.count() == 0
    client.force_login(staff_user)
    assert_course_still_works(course, api, django_capture_on_commit_callbacks, client)


def test_the_reproduction_from_the_issue_names_the_field(course, api):
    response = api.post(url(course, "/interactions"), answer(timestamp=BEYOND_9999), format="json")
    body = response.json()
    assert (response.status_code, body["code"], body["field"], body["index"]) == (
        400,
        "invalid_timestamp",
        "timestamp",
        0,
    )
    assert "1970-01-01T00:00:00Z" in body["message"]
    xapi = api.post(
        url(course, "/xapi/statements"), [statement(), statement(id="st-2", timestamp=BEFORE_YEAR_1)], format="json"
    ).json()
    assert (xapi["code"], xapi["field"], xapi["index"]) == ("invalid_timestamp", "timestamp", 1)


def test_the_bounds_are_settings(course, api, settings):
    settings.TUTOR_EARLIEST_TIMESTAMP = datetime(2020, 1, 1, tzinfo=UTC)
    settings.TUTOR_CLOCK_SKEW = timedelta(seconds=60)
    now = datetime.now(UTC)
    refused = [
        answer(0, timestamp="2019-12-31T23:59:59Z"),
        answer(1, timestamp=(now + timedelta(minutes=5)).isoformat()),
    ]
    for row in refused:
        assert api.post(url(course, "/interactions"), row, format="json").status_code == 400
    accepted = [
        answer(2, timestamp="2020-01-01T00:00:00Z"),
        answer(3, timestamp=(now + timedelta(seconds=30)).isoformat()),
    ]
    assert api.post(url(course, "/interactions"), accepted, format="json").status_code == 201


@pytest.mark.parametrize(
    "skew, earliest, shown",
    [
        ("P2D", "2000-01-01", "172800.0 2000-01-01T00:00:00+00:00"),
        ("90", "2000-01-01T01:00:00+01:00", "90.0 2000-01-01T00:00:00+00:00"),
        ("banana", "2000-01-01", "ImproperlyConfigured"),
        ("60", "yesterday", "ImproperlyConfigured"),
    ],
)
def test_the_bound_settings_read_seconds_durations_and_moments(skew, earliest, shown):
    import subprocess
    import sys

    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TUTOR_CLOCK_SKEW.total_seconds(), settings.TUTOR_EARLIEST_TIMESTAMP.isoformat())"
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tutor.settings",
        "TUTOR_CLOCK_SKEW": skew,
        "TUTOR_EARLIEST_TIMESTAMP": earliest,
    }
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60)
    assert shown in done.stdout + done.stderr


def test_the_web_page_and_lti_path_share_the_check(course):
    # The learner page and LTI record through answers_record, which validates every dict row.
    with pytest.raises(ServiceError) as refused:
        answers_record(
            course=course, rows=[answer(timestamp=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))]
        )
    assert refused.value.field == "timestamp"
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize(
    "format, header, good, bad",
    [
        ("csv", "learner,item,skill,correct,timestamp", "u1,q1,s1,1,2026-01-01T00:00:00Z", f"u1,q2,s1,0,{BEYOND_9999}"),
        ("csv", "learner,item,skill,correct,timestamp", "u1,q1,s1,1,1767225600", "u1,q2,s1,0,1e20"),
        ("csv", "learner,item,skill,correct,timestamp", "u1,q1,s1,1,1767225600", "u1,q2,s1,0,nan"),
        (
            "pybkt",
            "user_id,skill_name,correct,order_id,start_time",
            "7,s1,1,1,2026-01-01 10:00:00",
            f"7,s1,0,2,{BEFORE_YEAR_1}",
        ),
    ],
)
def test_the_importer_reports_file_line_reason_and_writes_nothing(tmp_path, format, header, good, bad):
    path = tmp_path / "answers.csv"
    path.write_text(f"{header}\n{good}\n{bad}\n{good.replace('q1', 'q3')}\n", encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_interactions", "--course", "imported", "--format", format, str(path), "--no-progress")
    assert f"{path}:3: timestamp must lie between" in str(refused.value)
    assert not Course.objects.filter(slug="imported").exists() and Interaction.objects.count() == 0


def test_the_dbe_importer_bounds_its_unix_seconds(tmp_path):
    folder = tmp_path / "pyedmine_preprocessed"
    folder.mkdir()
    path = folder / "data.txt"
    path.write_text(
        "user_id,seq_len;question_seq,correctness_seq,time_seq\n1\n2\n1,2\n1,0\n1767225600,100000000000000000000\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as refused:
        call_command("import_interactions", "--course", "dbe", "--format", "dbe", str(path), "--no-progress")
    assert f"{path}:4: timestamp must lie between" in str(refused.value)
    assert Interaction.objects.count() == 0


def test_the_importer_checks_skill_ids_too(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text(
        "learner,item,skill,correct,timestamp\nu1,q1,s1,1,2026-01-01T00:00:00Z\n"
        f"u1,q2,{'s' * 201},0,2026-01-01T00:01:00Z\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match=f"{path}:3: skill must be at most 200 characters"):
        call_command("import_interactions", "--course", "imported", "--format", "csv", str(path), "--no-progress")
    assert not Course.objects.filter(slug="imported").exists()


# --- item 2: 400s where 500s were ----------------------------------------------------------------


HUNDREDS = "1" + "0" * 300


@pytest.mark.parametrize(
    "tail, body, code",
    [
        ("/interactions", f'{{"learner": "u1", "item": "q1", "correct": {HUNDREDS}}}', "invalid_number"),
        (
            "/interactions",
            f'{{"learner": "u1", "item": "q1", "correct": 1, "response_time": {HUNDREDS}}}',
            "invalid_number",
        ),
        (
            "/interactions",
            '{"learner": "u1", "item": "q1", "correct": 1, "response_time": 1e300}',
            "invalid_response_time",
        ),
        ("/interactions", '{"learner": "u1", "item": "q1", "correct": 1e400}', "invalid_number"),
        ("/interactions", '{"learner": "u1", "item": "q1", "correct": 1, "timestamp": 1e20}', "invalid_timestamp"),
        ("/interactions", '{"learner": "\\ud800", "item": "q1", "correct": 1}', "invalid_character"),
        ("/interactions", '{"learner": "u1", "item": "q1", "correct": 1, "response": "\\udc00"}', "invalid_character"),
        ("/interactions", '{"learner": "u1", "item": "q1", "correct": 1, "id": "a\\ud83d"}', "invalid_character"),
        ("/interactions", '{"learner": "u1", "item": "q1", "correct": Infinity}', "malformed_json"),
        (
            "/xapi/statements",
            json.dumps(statement(result={"score": {"scaled": 0.5}})).replace("0.5", HUNDREDS),
            "invalid_number",
        ),
        (
            "/xapi/statements",
            json.dumps(statement(actor={"mbox": "mailto:XX"})).replace("XX", "\\ud800"),
            "invalid_character",
        ),
        ("/curriculum", '{"skills": [{"id": "\\ud800"}]}', "invalid_character"),
        ("/curriculum", '{"items": [{"id": "q9", "skills": ["count"], "body": "\\udfff"}]}', "invalid_character"),
        ("/curriculum", '{"policy": [1, 2]}', "invalid_policy"),
        ("/curriculum", '{"policy": 5}', "invalid_policy"),
        ("/curriculum", '{"policy": "threshold"}', "invalid_policy"),
        ("/curriculum", '{"policy": {"review_after_days": 1e400}}', "invalid_number"),
        ("/curriculum", '{"policy": {"review_after_days": 1e300}}', "invalid_policy"),
        ("/curriculum", '{"policy": {"avoid_recent": 1e300}}', "invalid_policy"),
        ("/curriculum", f'{{"policy": {{"struggle_window": {HUNDREDS}}}}}', "invalid_number"),
        ("/curriculum", '{"policy": {"struggle_window": 1000000000000, "struggle_errors": 1}}', "invalid_policy"),
        ("/curriculum", '{"policy": {"threshold": "0.9"}}', "invalid_policy"),
        ("/fits", '{"model": "rate", "params": {"\\ud800": 1}}', "invalid_character"),
        ("/fits", '{"model": "bkt", "params": {"restarts": 1e400}}', "invalid_number"),
        ("/predict", '{"learner": "\\ud800", "items": ["q1"]}', "invalid_character"),
    ],
)
def test_hostile_values_get_a_400_and_store_nothing(course, api, tail, body, code):
    policy = Course.objects.get(pk=course.pk).policy
    response = post_raw(api, url(course, tail), body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code, response.json()
    assert Interaction.objects.count() == Learner.objects.count() == Fit.objects.count() == 0
    assert Skill.objects.filter(course=course).count() == 3
    assert Course.objects.get(pk=course.pk).policy == policy


def test_the_hand_written_validators_hold_without_the_parser(course):
    """Rows, curriculum documents and fit params can arrive from Python (LTI, the web page, commands)."""
    for row, field in [
        ({"learner": "u1", "item": "q1", "correct": 10**400}, "correct"),
        ({"learner": "u1", "item": "q1", "correct": 1, "response_time": 10**400}, "response_time"),
        ({"learner": "u1", "item": "q1", "correct": 1, "timestamp": float("nan")}, "timestamp"),
        ({"learner": "u\ud800", "item": "q1", "correct": 1}, "learner"),
        ({"learner": "u1", "item": "q1", "correct": 1, "response": "\udc00"}, "response"),
    ]:
        with pytest.raises(ServiceError) as refused:
            row_validate(row)
        assert refused.value.field == field
    for document in [
        {"skills": [{"id": "s\ud800"}]},
        {"skills": [{"id": "s", "name": "\udfff"}]},
        {"policy": {"struggle_window": float("inf")}},
        {"policy": {"threshold": 10**400}},
        {"policy": [["threshold", 0.5]]},
    ]:
        with pytest.raises(CurriculumError):
            document_validate(document)
    for params in [{"\ud800": 1}, {"x" * 100: 1}, {"not a name": 1}]:
        with pytest.raises(ServiceError) as refused:
            fit_create(course=course, kind="rate", params=params)
        assert refused.value.code == "invalid_params"
    assert Fit.objects.count() == 0


def test_the_dashboard_fit_form_refuses_infinity_as_a_form_error(client, staff_user, course):
    client.force_login(staff_user)
    for params in ['{"restarts": Infinity}', '{"restarts": NaN}', '{"\\ud800": 1}', f'{{"restarts": {HUNDREDS}}}']:
        response = client.post(reverse("dashboard_fits", args=[course.slug]), {"model": "bkt", "params": params})
        assert response.status_code == 400, params
        assert "not accepted" in response.content.decode()
    assert Fit.objects.count() == 0


def test_the_fit_command_uses_the_strict_loader(course):
    with pytest.raises(CommandError, match="not a JSON number"):
        call_command("fit", "--course", course.slug, "--model", "rate", "--params", '{"x": NaN}')
    assert Fit.objects.count() == 0


def test_the_curriculum_command_uses_the_strict_loader(tmp_path):
    path = tmp_path / "curriculum.json"
    path.write_text('{"course": {"id": "strict"}, "policy": {"review_after_days": NaN}}', encoding="utf-8")
    with pytest.raises(CommandError, match="not valid JSON: NaN is not a JSON number"):
        call_command("import_curriculum", str(path))
    assert not Course.objects.filter(slug="strict").exists()


# --- item 8: size and paging -----------------------------------------------------------------------


@override_settings(TUTOR_API_MAX_BODY_BYTES=4096, DATA_UPLOAD_MAX_MEMORY_SIZE=4096)
def test_a_body_over_the_limit_gets_the_413_json_even_when_django_has_the_same_limit(course, api):
    rows = [answer(step) for step in range(100)]
    response = api.post(url(course, "/interactions"), rows, format="json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "payload_too_large"
    assert Interaction.objects.count() == 0


@override_settings(TUTOR_API_MAX_BODY_BYTES=1000)
def test_the_streamed_size_is_counted_without_a_content_length():
    from rest_framework.exceptions import APIException

    body = json.dumps([answer(step) for step in range(40)]).encode()
    with pytest.raises(APIException) as refused:
        BoundedJSONParser().parse(io.BytesIO(body), "application/json", {"request": None})
    assert refused.value.status_code == 413
    assert BoundedJSONParser().parse(io.BytesIO(b'{"a": 1}'), "application/json", {"request": None}) == {"a": 1}


@pytest.mark.parametrize(
    "query, code",
    [
        ({"limit": "abc"}, "invalid_limit"),
        ({"limit": "-1"}, "invalid_limit"),
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "1001"}, "invalid_limit"),
        ({"limit": "1e3"}, "invalid_limit"),
        ({"limit": " 5"}, "invalid_limit"),
        ({"limit": "9" * 40}, "invalid_limit"),
        ({"offset": "0"}, "invalid_offset"),
        ({"offset": "x"}, "invalid_offset"),
        ({"after": "x"}, "invalid_after"),
        ({"after": "W10"}, "invalid_after"),
        ({"after": "WyJhIiwiYiJd"}, "invalid_after"),
        ({"after": "eyJhIjoxfQ"}, "invalid_after"),
        ({"after": "WzEsIDJd"}, "invalid_after"),
        ({"after": "%%%"}, "invalid_after"),
    ],
)
def test_limit_offset_and_cursors_that_are_not_ours_get_a_400(course, api, query, code):
    for tail in ("/interactions", "/learners", "/fits"):
        response = api.get(url(course, tail), query)
        assert response.status_code == 400, (tail, response.content)
        assert (response.json()["code"], response.json()["field"]) == (code, next(iter(query)))


def test_good_pages_still_work(course, api):
    api.post(url(course, "/interactions"), [answer(step) for step in range(5)], format="json")
    first = api.get(url(course, "/interactions"), {"limit": "3"}).json()
    assert [row["id"] for row in first["results"]] == ["ok-0", "ok-1", "ok-2"]
    second = api.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == ["ok-3", "ok-4"] and second["next"] is None
    assert api.get(url(course, "/interactions"), {"limit": "1000"}).status_code == 200
    naive = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", 1]).encode()).decode()
    assert api.get(url(course, "/interactions"), {"after": naive}).json()["code"] == "invalid_after"
    assert len(api.get(url(course, "/interactions")).json()["results"]) == 5


# --- item 13: duplicates in the batch summary, ids given as numbers ----------------------------------


def test_the_batch_summary_counts_duplicates_within_the_batch(course, api):
    batch = [answer(0), answer(0), answer(1), answer(0)]
    first = api.post(url(course, "/interactions"), batch, format="json").json()
    assert (first["created"], first["duplicates"]) == (2, 2)
    assert [row["status"] for row in first["results"]] == ["created", "duplicate", "created", "duplicate"]
    again = api.post(url(course, "/interactions"), batch, format="json").json()
    assert (again["created"], again["duplicates"]) == (0, 4)
    xapi = api.post(url(course, "/xapi/statements"), [statement(), statement()], format="json").json()
    assert (xapi["created"], xapi["duplicates"]) == (1, 1)
    assert Interaction.objects.count() == 3


@pytest.mark.parametrize("body", [{"id": 12}, {"id": 12.0}, {"id": "maths", "name": 5}, {"id": True}])
def test_a_course_id_sent_as_a_number_is_a_400(body):
    admin = client_for(api_key_create(name="admin", course=None)[1])
    response = admin.post("/api/v1/courses", body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_type", response.content
    assert not Course.objects.exists()


@pytest.mark.parametrize("field", ["learner", "item", "id"])
def test_ids_sent_as_numbers_are_refused_everywhere(course, api, field):
    response = api.post(url(course, "/interactions"), answer(**{field: 12}), format="json")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (400, "invalid_type", field)
    predict = api.post(url(course, "/predict"), {"learner": 12, "items": ["q1"]}, format="json")
    assert predict.status_code == 400 and predict.json()["code"] == "invalid_type"
    assert Interaction.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_senders_of_one_batch_with_repeats_count_every_row(postgresql):
    course = course_with_curriculum("parallel")
    raw_key = key_for(course)
    batch = [answer(step % 5) for step in range(12)]  # 5 distinct ids, 7 repeats

    def send() -> tuple[int, dict]:
        response = client_for(raw_key).post(url(course, "/interactions"), batch, format="json")
        return response.status_code, response.json()

    replies = together(lambda number: send())
    assert all(status in (200, 201) for status, _ in replies), replies
    assert sum(body["created"] for _, body in replies) == 5
    assert all(body["created"] + body["duplicates"] == len(batch) for _, body in replies)
    assert Interaction.objects.filter(course=course).count() == 5


@pytest.mark.django_db(transaction=True)
def test_parallel_creations_of_one_course_give_one_201_and_400s(postgresql):
    raw_key = api_key_create(name="admin", course=None)[1]

    def create() -> tuple[int, str]:
        response = client_for(raw_key).post("/api/v1/courses", {"id": "raced"}, format="json")
        return response.status_code, response.json()["code"] if response.status_code != 201 else ""

    assert sorted(together(lambda number: create())) == [(201, "")] + [(400, "exists")] * 7
    assert Course.objects.filter(slug="raced").count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_imports_of_one_curriculum_store_it_once(postgresql):
    from curriculum.services import course_create

    course = course_create(slug="racing")
    raw_key = key_for(course)
    document = {
        "skills": [{"id": f"s{n}"} for n in range(20)],
        "items": [{"id": f"q{n}", "skills": [f"s{n}"]} for n in range(20)],
        "prerequisites": [{"from": f"s{n}", "to": f"s{n + 1}"} for n in range(19)],
    }
    replies = together(
        lambda number: client_for(raw_key).post(url(course, "/curriculum"), document, format="json").status_code
    )
    assert replies == [200] * 8
    assert Skill.objects.filter(course=course).count() == 20
