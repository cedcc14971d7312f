"""REST API v1: every endpoint, success and failure, isolation between courses, idempotent retries."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings

from curriculum.services import learned_edges_store
from tests.tutor.api_support import CURRICULUM, client_for, course_with_curriculum, key_for
from tutor.keys import api_key_create
from tutor.models import ApiKey, Interaction, Learner

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def course():
    return course_with_curriculum("fractions")


@pytest.fixture
def api(course):
    return client_for(key_for(course))


def url(course, tail: str = "") -> str:
    return f"/api/v1/courses/{course.slug}{tail}"


def answers(learner: str, count: int, *, start: datetime = START, prefix: str = "a") -> list[dict]:
    items = ["q1", "q2", "q3", "q17"]
    return [
        {
            "id": f"{prefix}-{learner}-{step}",
            "learner": learner,
            "item": items[step % 4],
            "correct": (step * 7 + len(learner)) % 3 != 0,
            "timestamp": (start + timedelta(minutes=step)).isoformat(),
        }
        for step in range(count)
    ]


def test_create_course_with_a_global_key_only():
    _, global_key = api_key_create(name="admin", course=None)
    response = client_for(global_key).post("/api/v1/courses", {"id": "algebra", "name": "Algebra"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] == "algebra" and response.json()["name"] == "Algebra"

    again = client_for(global_key).post("/api/v1/courses", {"id": "algebra"}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "exists" and again.json()["field"] == "id"
    bad = client_for(global_key).post("/api/v1/courses", {"id": "Not A Slug!"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "id"

    course_key = key_for(course_with_curriculum("other"))
    refused = client_for(course_key).post("/api/v1/courses", {"id": "sneaky"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    anonymous = client_for(None).post("/api/v1/courses", {"id": "anon"}, format="json")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"


def test_course_list_shows_only_the_keys_course(course, api):
    course_with_curriculum("elsewhere")
    response = api.get("/api/v1/courses")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == ["fractions"]


def test_curriculum_import_is_idempotent_and_validated(course, api):
    document = {
        "skills": [{"id": "mul", "name": "Multiplying"}],
        "items": [{"id": "m1", "skills": ["mul", "add"], "body": "2 x 3"}],
        "prerequisites": [{"from": "add", "to": "mul"}],
    }
    first = api.post(url(course, "/curriculum"), document, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["skills"]["created"] == 1 and first.json()["prerequisites"]["created"] == 1
    second = api.post(url(course, "/curriculum"), document, format="json")
    assert second.json()["skills"] == {"created": 0, "updated": 0, "unchanged": 1}

    cycle = api.post(
        url(course, "/curriculum"), {"prerequisites": [{"from": "frac-add", "to": "count"}]}, format="json"
    )
    assert cycle.status_code == 400 and cycle.json()["code"] == "cycle"
    not_object = api.post(url(course, "/curriculum"), [1, 2], format="json")
    assert not_object.status_code == 400 and not_object.json()["code"] == "invalid_curriculum"


def test_graph_has_authored_and_learned_edges_with_origin_and_weight(course, api):
    learned_edges_store(
        course=course, fit_pk=None, edges=[("count", "frac-add", 0.8), ("q", "x", 0.9), ("count", "frac-add", 0.3)]
    )
    response = api.get(url(course, "/graph"))
    assert response.status_code == 200
    body = response.json()
    assert [skill["id"] for skill in body["skills"]] == ["count", "add", "frac-add"]
    assert body["skills"][0]["name"] == "Counting"
    edges = {(edge["from"], edge["to"]): (edge["origin"], edge["weight"]) for edge in body["edges"]}
    assert edges == {
        ("count", "add"): ("authored", 1.0),
        ("add", "frac-add"): ("authored", 1.0),
        ("count", "frac-add"): ("learned", 0.8),
    }
    strict = api.get(url(course, "/graph"), {"min_weight": 0.9}).json()
    assert {(edge["from"], edge["to"]) for edge in strict["edges"]} == {("count", "add"), ("add", "frac-add")}
    authored = api.get(url(course, "/graph"), {"include_learned": "false"}).json()
    assert all(edge["origin"] == "authored" for edge in authored["edges"])
    bad = api.get(url(course, "/graph"), {"min_weight": "heavy"})
    assert bad.status_code == 400 and bad.json()["field"] == "min_weight"


def test_record_one_interaction_returns_rows_and_new_mastery(course, api):
    row = {"id": "lms-123", "learner": "u42", "item": "q17", "correct": 1, "timestamp": "2026-11-25T10:00:00Z"}
    response = api.post(url(course, "/interactions"), row, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 1 and body["duplicates"] == 0 and body["learners_created"] == 1
    stored = Interaction.objects.get(client_id="lms-123")
    assert body["results"] == [
        {"index": 0, "id": "lms-123", "status": "created", "interaction": stored.pk, "learner": "u42", "item": "q17"}
    ]
    assert set(body["mastery"]["u42"]) == {"count", "add", "frac-add"}
    assert all(0.0 <= value <= 1.0 for value in body["mastery"]["u42"].values())


def test_retried_batch_stores_nothing_twice_and_answers_the_same(course, api):
    batch = answers("u1", 6) + answers("u2", 4)
    first = api.post(url(course, "/interactions"), batch, format="json")
    assert first.status_code == 201 and first.json()["created"] == 10
    retry = api.post(url(course, "/interactions"), batch, format="json")
    assert retry.status_code == 200, retry.content
    assert retry.json()["created"] == 0 and retry.json()["duplicates"] == 10
    assert [r["interaction"] for r in retry.json()["results"]] == [r["interaction"] for r in first.json()["results"]]
    assert {r["status"] for r in retry.json()["results"]} == {"duplicate"}
    assert retry.json()["mastery"] == first.json()["mastery"]
    assert Interaction.objects.filter(course=course).count() == 10

    overlap = answers("u1", 8)  # 6 stored before, 2 new, and one of the new ones repeated
    response = api.post(url(course, "/interactions"), overlap + [overlap[-1]], format="json")
    assert response.status_code == 201
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["duplicate"] * 6 + ["created", "created", "duplicate"]
    assert response.json()["results"][-1]["interaction"] == response.json()["results"][-2]["interaction"]
    assert Interaction.objects.filter(course=course).count() == 12


def test_a_bad_row_fails_the_whole_batch_naming_row_and_field(course, api):
    batch = answers("u1", 5)
    batch[3]["correct"] = 7
    response = api.post(url(course, "/interactions"), batch, format="json")
    assert response.status_code == 400
    assert response.json() | {"message": ""} == {
        "code": "invalid_correct",
        "field": "correct",
        "index": 3,
        "message": "",
    }
    assert "row 3" in response.json()["message"]
    batch[3]["correct"] = 1
    batch[4]["item"] = "nope"
    unknown = api.post(url(course, "/interactions"), batch, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_item"
    assert unknown.json()["detail"] == {"unknown_items": ["nope"]}
    assert not Interaction.objects.exists() and not Learner.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"learner": "u1", "item": ', "application/json", 400, "malformed_json"),
        (b'"just a string"', "application/json", 400, "invalid_type"),
        (b"[]", "application/json", 400, "empty_batch"),
        (b'{"learner": "u1", "item": "q1", "correct": NaN}', "application/json", 400, "malformed_json"),
        (b'{"learner": 5.5, "item": "q1", "correct": 1}', "application/json", 400, "invalid_type"),
        (b'{"learner": "u1", "item": "q1", "correct": "yes"}', "application/json", 400, "invalid_correct"),
        (
            b'{"learner": "u1", "item": "q1", "correct": 1, "timestamp": "yesterday"}',
            "application/json",
            400,
            "invalid_timestamp",
        ),
        (b'{"learner": "u\\u0000", "item": "q1", "correct": 1}', "application/json", 400, "invalid_character"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed_json"),
        (b"learner=u1&item=q1&correct=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"\xff\xfe not utf-8", "application/json", 400, "malformed_json"),
    ],
)
def test_bad_input_never_gets_a_500(course, api, body, content_type, status, code):
    response = api.generic("POST", url(course, "/interactions"), body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["message"]


def test_batch_limits(course, api):
    too_many = api.post(
        url(course, "/interactions"), [{"learner": "u", "item": "q1", "correct": 1}] * 10_001, format="json"
    )
    assert too_many.status_code == 400 and too_many.json()["code"] == "batch_too_large"
    with override_settings(TUTOR_API_MAX_BODY_BYTES=1000):
        huge = api.post(url(course, "/interactions"), answers("u1", 40), format="json")
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"


@pytest.mark.slow
def test_a_full_batch_of_ten_thousand_is_accepted(course, api):
    batch = [row for number in range(100) for row in answers(f"learner-{number:03d}", 100, prefix="big")]
    body = json.dumps(batch).encode()
    assert len(body) < 2_000_000 * 2
    response = api.generic("POST", url(course, "/interactions"), body, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["created"] == 10_000 and len(response.json()["mastery"]) == 100


def test_list_interactions_with_filters_and_pages(course, api):
    api.post(url(course, "/interactions"), answers("u1", 8) + answers("u2", 4), format="json")
    everything = api.get(url(course, "/interactions"), {"limit": 5})
    assert everything.status_code == 200 and len(everything.json()["results"]) == 5
    # Following next walks every row once, oldest first, whatever the page size.
    walked, page = [], everything.json()
    while True:
        walked += page["results"]
        if page["next"] is None:
            break
        assert "limit=5" in page["next"]
        page = api.get(page["next"]).json()
    assert len(walked) == 12 and len({row["interaction"] for row in walked}) == 12
    assert [row["timestamp"] for row in walked] == sorted(row["timestamp"] for row in walked)
    mine = api.get(url(course, "/interactions"), {"learner": "u2"}).json()
    assert len(mine["results"]) == 4 and {row["learner"] for row in mine["results"]} == {"u2"}
    adding = api.get(url(course, "/interactions"), {"skill": "add"}).json()
    assert len(adding["results"]) == 9 and {row["item"] for row in adding["results"]} == {"q2", "q3", "q17"}
    window = api.get(
        url(course, "/interactions"),
        {"since": (START + timedelta(minutes=2)).isoformat(), "until": (START + timedelta(minutes=4)).isoformat()},
    ).json()
    assert len(window["results"]) == 4
    assert {row["timestamp"][11:16] for row in window["results"]} == {"10:02", "10:03"}
    bad = api.get(url(course, "/interactions"), {"since": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["field"] == "since"


def test_learners_mastery_next_and_predict(course, api):
    api.post(url(course, "/interactions"), answers("u1", 8) + answers("u2", 3), format="json")
    learners = api.get(url(course, "/learners"), {"limit": 1})
    assert learners.status_code == 200
    assert [row["id"] for row in learners.json()["results"]] == ["u1"] and learners.json()["next"]
    assert [row["id"] for row in api.get(learners.json()["next"]).json()["results"]] == ["u2"]

    mastery = api.get(url(course, "/learners/u1/mastery"))
    assert mastery.status_code == 200
    rows = {row["skill"]: row["probability"] for row in mastery.json()["mastery"]}
    assert set(rows) == {"count", "add", "frac-add"}
    assert mastery.json()["mean"] == pytest.approx(sum(rows.values()) / 3, abs=1e-6)
    assert api.get(url(course, "/learners/nobody/mastery")).status_code == 404
    assert mastery.json()["forecast"] is None and mastery.json()["traits"] == {}  # bkt: no traits

    later = api.get(url(course, "/learners/u1/mastery"), {"at": "2027-01-01T00:00:00Z"})
    assert later.status_code == 200 and later.json()["at"].startswith("2027-01-01")
    # BKT has no forgetting: the forecast is today's mastery.
    assert later.json()["forecast"] == pytest.approx(rows, abs=1e-6)
    bad = api.get(url(course, "/learners/u1/mastery"), {"at": "next spring"})
    assert bad.status_code == 400 and bad.json()["field"] == "at"

    choice = api.get(url(course, "/learners/u1/next"))
    assert choice.status_code == 200
    assert choice.json()["item"] in {item["id"] for item in CURRICULUM["items"]} or choice.json()["done"]
    assert choice.json()["why"] in {"frontier", "review", "remediation", "confirm", "done"}
    assert "answer" not in choice.json()

    predicted = api.post(url(course, "/predict"), {"learner": "u1", "items": ["q17", "q1"]}, format="json")
    assert predicted.status_code == 200
    assert [row["item"] for row in predicted.json()["predictions"]] == ["q17", "q1"]
    assert all(0.0 < row["p_correct"] < 1.0 for row in predicted.json()["predictions"])
    unknown = api.post(url(course, "/predict"), {"learner": "u1", "items": ["q1", "zzz"]}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_item"
    empty = api.post(url(course, "/predict"), {"learner": "u1", "items": []}, format="json")
    assert empty.status_code == 400 and empty.json()["field"] == "items"


def test_a_new_learner_gets_a_first_item_and_predictions_from_the_prior(course, api):
    # An LMS asks for the first question before there is any answer (issue 21).
    first = api.get(url(course, "/learners/newcomer/next"))
    assert first.status_code == 200, first.content
    assert first.json()["item"] == "q1" and first.json()["skill"] == "count" and first.json()["why"] == "frontier"
    assert first.json()["mastery"] is not None and not first.json()["done"]
    predicted = api.post(url(course, "/predict"), {"learner": "newcomer", "items": ["q1", "q17"]}, format="json")
    assert predicted.status_code == 200, predicted.content
    prior = {row["item"]: row["p_correct"] for row in predicted.json()["predictions"]}
    assert all(0.0 < value < 1.0 for value in prior.values())
    assert not Learner.objects.filter(course=course, external_id="newcomer").exists()  # a read writes nothing
    # The same answers as a learner who exists but has answered nothing.
    Learner.objects.create(course=course, external_id="registered")
    stored = api.post(url(course, "/predict"), {"learner": "registered", "items": ["q1", "q17"]}, format="json")
    assert {row["item"]: row["p_correct"] for row in stored.json()["predictions"]} == prior
    too_long = api.get(url(course, "/learners/" + "x" * 201 + "/next"))
    assert too_long.status_code == 400 and too_long.json()["field"] == "learner"
    assert api.get(url(course, "/learners/u1/mastery")).status_code == 404  # mastery stays per stored learner


def test_next_works_towards_a_goal_named_in_the_query(course, api):
    # An LMS placement practising one part of the course names its goal skill (issue 21).
    assert api.get(url(course, "/learners/newcomer/next")).json()["goals_total"] == 3
    aimed = api.get(url(course, "/learners/newcomer/next"), {"goal": "count"})
    assert aimed.status_code == 200, aimed.content
    assert (aimed.json()["skill"], aimed.json()["goals_total"]) == ("count", 1)
    for bad, code in (("no-such-skill", "unknown_skill"), ("x" * 201, "max_length")):
        refused = api.get(url(course, "/learners/newcomer/next"), {"goal": bad})
        assert refused.status_code == 400 and refused.json()["field"] == "goal", refused.content
        assert refused.json()["code"] == code
    assert not Learner.objects.filter(course=course, external_id="newcomer").exists()


def test_fits_run_and_report(course, api, django_capture_on_commit_callbacks):
    api.post(url(course, "/interactions"), [row for n in range(6) for row in answers(f"u{n}", 10)], format="json")
    with django_capture_on_commit_callbacks(execute=True):  # tasks run in-process once the fit is committed
        response = api.post(url(course, "/fits"), {"model": "rate"}, format="json")
    assert response.status_code == 202, response.content
    fit = response.json()
    assert response["Location"] == url(course, f"/fits/{fit['id']}")
    detail = api.get(url(course, f"/fits/{fit['id']}")).json()
    assert detail["status"] == "succeeded" and detail["active"] and detail["progress"] == 1.0
    assert 0.0 <= detail["metrics"]["next_step"]["auc"] <= 1.0
    assert detail["timings"]["total_s"] > 0 and detail["error"] == ""
    listed = api.get(url(course, "/fits")).json()
    assert [row["id"] for row in listed["results"]] == [fit["id"]]

    unknown = api.post(url(course, "/fits"), {"model": "oracle"}, format="json")
    assert (
        unknown.status_code == 400 and unknown.json()["code"] == "unknown_model" and unknown.json()["field"] == "model"
    )
    bad_params = api.post(url(course, "/fits"), {"model": "rate", "params": {"nonsense": 1}}, format="json")
    assert bad_params.status_code == 400 and bad_params.json()["code"] == "invalid_params"
    wrong_type = api.post(url(course, "/fits"), {"model": "rate", "params": [1]}, format="json")
    assert wrong_type.status_code == 400 and wrong_type.json()["field"] == "params"
    assert api.get(url(course, "/fits/999999")).status_code == 404


ENDPOINTS: list[tuple[str, str, Any]] = [
    ("get", "/graph", None),
    ("post", "/curriculum", {"skills": []}),
    ("get", "/interactions", None),
    ("post", "/interactions", {"learner": "u1", "item": "q1", "correct": 1}),
    ("get", "/learners", None),
    ("get", "/learners/u1/mastery", None),
    ("get", "/learners/u1/next", None),
    ("post", "/predict", {"learner": "u1", "items": ["q1"]}),
    ("get", "/fits", None),
    ("post", "/fits", {"model": "rate"}),
    ("get", "/fits/1", None),
    ("post", "/xapi/statements", {"verb": {"id": "http://adlnet.gov/expapi/verbs/answered"}}),
]


@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_a_course_key_sees_nothing_of_another_course(course, method, tail, body):
    other = course_with_curriculum("other")
    client_for(key_for(other)).post(
        url(other, "/interactions"), {"learner": "u1", "item": "q1", "correct": 1}, format="json"
    )
    response = getattr(client_for(key_for(course)), method)(url(other, tail), body, format="json")
    assert response.status_code == 404, response.content
    assert response.json() == {"code": "not_found", "message": "course 'other' not found", "field": "course"}
    assert Interaction.objects.filter(course=other).count() == 1


def test_a_revoked_key_stops_working_within_the_recheck_time(course, settings, monkeypatch):
    settings.TUTOR_API_KEY_RECHECK = 5.0
    clock = [1000.0]
    monkeypatch.setattr("core.recheck.time.monotonic", lambda: clock[0])
    key, raw = api_key_create(name="soon revoked", course=course)
    assert client_for(raw).get(url(course, "/learners")).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    clock[0] += 4.0  # still trusted: this process checked it 4 s ago
    assert client_for(raw).get(url(course, "/learners")).status_code == 200
    clock[0] += 1.5
    assert client_for(raw).get(url(course, "/learners")).status_code == 401
    settings.TUTOR_API_KEY_RECHECK = 0.0
    other, raw_other = api_key_create(name="checked every time", course=course)
    assert client_for(raw_other).get(url(course, "/learners")).status_code == 200
    ApiKey.objects.filter(pk=other.pk).update(is_active=False)
    assert client_for(raw_other).get(url(course, "/learners")).status_code == 401


def test_authentication_failures_and_staff_sessions(course, django_user_model):
    assert client_for("kt_nothing_here").get(url(course, "/learners")).json()["code"] == "invalid_key"
    assert client_for("garbage").get(url(course, "/learners")).status_code == 401
    key, raw = api_key_create(name="old", course=course)
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    assert client_for(raw).get(url(course, "/learners")).status_code == 401

    staff = django_user_model.objects.create_user(username="teacher", password="pw", is_staff=True)
    client = client_for(None)
    client.force_login(staff)
    assert client.get(url(course, "/learners")).status_code == 200
    learner = django_user_model.objects.create_user(username="pupil", password="pw")
    client.force_login(learner)
    assert client.get(url(course, "/learners")).status_code == 403


def test_keys_are_stored_hashed_and_printed_once(course, capsys):
    call_command("apikey_create", "--course", course.slug, "--name", "Moodle")
    raw = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(name="Moodle")
    assert raw.startswith(f"kt_{key.prefix}_") and key.course == course
    assert raw not in {key.digest, key.prefix} and len(key.digest) == 64
    assert client_for(raw).get(url(course, "/learners")).status_code == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


@override_settings(TUTOR_API_RATE="3/min")
def test_each_key_is_throttled_on_its_own(course):
    cache.clear()
    first, second = client_for(key_for(course, "one")), client_for(key_for(course, "two"))
    assert [first.get(url(course, "/learners")).status_code for _ in range(3)] == [200, 200, 200]
    throttled = first.get(url(course, "/learners"))
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    assert second.get(url(course, "/learners")).status_code == 200


@override_settings(TUTOR_API_RATE="3/min")
def test_the_limit_slides_across_window_edges(course, monkeypatch):
    cache.clear()
    clock = [6_000_000.0]  # the start of a minute
    monkeypatch.setattr("tutor.api.throttling.time.time", lambda: clock[0])
    client = client_for(key_for(course, "sliding"))

    def statuses(count: int) -> list[int]:
        return [client.get(url(course, "/learners")).status_code for _ in range(count)]

    assert statuses(3) == [200, 200, 200]
    clock[0] += 60.5  # a new minute, but the last 60 s still hold 3 requests
    refused = client.get(url(course, "/learners"))
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    clock[0] += 40.0  # two thirds into the window: the previous minute weighs 1/3 of its 3 requests
    assert statuses(3) == [200, 200, 429]


@override_settings(TUTOR_API_RATE="3/min")
@pytest.mark.parametrize("start", [0.0, 12.5, 45.0])
def test_retry_after_is_when_a_request_passes_again(course, monkeypatch, start):
    """A client that waits Retry-After and asks once more gets through, wherever in the window it was refused
    (before, at a window's start the next window still weighed this one's requests: refused again)."""
    cache.clear()
    clock = [6_000_000.0 + start]  # 6,000,000 s is the start of a minute
    monkeypatch.setattr("tutor.api.throttling.time.time", lambda: clock[0])
    client = client_for(key_for(course, f"honest-{start}"))
    for _ in range(4):  # refusal, wait, pass: the sliding estimate carries each round into the next
        while (response := client.get(url(course, "/learners"))).status_code == 200:
            clock[0] += 0.25
        assert response.status_code == 429
        clock[0] += int(response["Retry-After"])
        assert client.get(url(course, "/learners")).status_code == 200, f"Retry-After {response['Retry-After']}"


@override_settings(TUTOR_API_RATE="3/min")
def test_a_key_s_own_rate_replaces_the_default(course):
    cache.clear()
    busy, _ = api_key_create(name="busy LMS", course=course, rate="5/min")
    plain = client_for(key_for(course, "plain"))
    assert [plain.get(url(course, "/learners")).status_code for _ in range(4)] == [200, 200, 200, 429]
    raw = api_key_create(name="busy LMS 2", course=course, rate="5/min")[1]
    assert [client_for(raw).get(url(course, "/learners")).status_code for _ in range(6)] == [200] * 5 + [429]
    assert busy.rate == "5/min"


@pytest.mark.parametrize("rate", ["lots", "0/min", "-5/min", "5/week", "5 / min", "1e3/min", "5/", "1234567890/s"])
def test_a_bad_key_rate_is_refused_in_the_admin_and_the_command(admin_client, course, rate):
    response = admin_client.post(
        "/admin/tutor/apikey/add/", {"name": "bad", "course": course.pk, "is_active": "on", "rate": rate}
    )
    assert response.status_code == 200 and "is not a rate" in response.content.decode()
    with pytest.raises(CommandError, match="is not a rate"):
        call_command("apikey_create", "--course", course.slug, "--name", "bad", f"--rate={rate}")
    assert not ApiKey.objects.filter(name="bad").exists()


def test_staff_set_a_key_s_rate_in_the_admin(admin_client, course):
    response = admin_client.post(
        "/admin/tutor/apikey/add/", {"name": "moodle", "course": course.pk, "is_active": "on", "rate": "12000/min"}
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(name="moodle").rate == "12000/min"


def test_the_default_rate_serves_500_learners_answering_every_10_seconds():
    from django.conf import settings

    from tutor.api.throttling import ApiKeyRateThrottle

    limit, duration = ApiKeyRateThrottle().parse_rate(settings.TUTOR_API_RATE)
    per_minute = limit * 60 / duration
    assert per_minute >= 500 * (60 / 10) * 2  # an answer and a next-item request each


def _redis_cache_url() -> str:
    """The CI result backend's Redis database (else the broker's) for cache tests. They use a key prefix of
    their own and delete only their keys: another database of that server may be someone else's, and the
    broker's holds the worker's queues."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        message = "needs Redis: CELERY_BROKER_URL does not name one"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    results = os.environ.get("CELERY_RESULT_BACKEND", "")
    return results if results.startswith("redis://") else broker


def test_the_throttle_counts_in_redis_in_one_round_trip(course, monkeypatch):
    import redis

    location = _redis_cache_url()
    trips, made = [], []
    single, batched, build = redis.Redis.execute_command, redis.client.Pipeline.execute, redis.Redis.__init__

    def counted_build(self, *args, **kwargs):
        made.append(type(self).__name__)
        return build(self, *args, **kwargs)

    def one_command(self, *args, **kwargs):
        if not isinstance(self, redis.client.Pipeline):
            trips.append(args[0])
        return single(self, *args, **kwargs)

    def pipeline(self, *args, **kwargs):
        trips.append("pipeline")
        return batched(self, *args, **kwargs)

    with override_settings(
        TUTOR_API_RATE="3/min",
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
                "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            }
        },
    ):  # fresh counters, beside anything else in that database
        clock = [6_000_030.0]  # half way through a minute
        monkeypatch.setattr("tutor.api.throttling.time.time", lambda: clock[0])
        client = client_for(key_for(course, "redis"))
        monkeypatch.setattr(redis.Redis, "execute_command", one_command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
        monkeypatch.setattr(redis.Redis, "__init__", counted_build)
        assert [client.get(url(course, "/learners")).status_code for _ in range(3)] == [200, 200, 200]
        assert trips == ["pipeline"] * 3  # one round trip to Redis per request
        assert made.count("Redis") <= 1  # and one client object for all of them
        refused = client.get(url(course, "/learners"))
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        counter = f"throttle_api_key:{ApiKey.objects.get(name='redis').prefix}:60"
        window = int(clock[0] // 60)
        assert cache.get(f"{counter}:{window}") == 3  # the refused request took its count back
        clock[0] += 40.0  # 10 s into the next minute: the previous one still weighs 5/6 of its 3 requests
        assert client.get(url(course, "/learners")).status_code == 429
        clock[0] += 30.0  # 40 s in: it weighs 1/3, so one more request fits
        assert client.get(url(course, "/learners")).status_code == 200
        assert cache.get(f"{counter}:{window + 1}") == 1
        cache.delete_many([f"{counter}:{window}", f"{counter}:{window + 1}"])


def test_schema_and_docs_describe_every_endpoint_without_a_cdn(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    document = schema.json()
    paths = set(document["paths"])
    prefix = "/api/v1/courses/{course}"
    assert paths == {
        "/api/v1/courses",
        f"{prefix}/curriculum",
        f"{prefix}/graph",
        f"{prefix}/interactions",
        f"{prefix}/learners",
        f"{prefix}/learners/{{learner}}/mastery",
        f"{prefix}/learners/{{learner}}/next",
        f"{prefix}/learners/{{learner}}/enrolment",
        f"{prefix}/predict",
        f"{prefix}/fits",
        f"{prefix}/fits/{{fit}}",
        f"{prefix}/xapi/statements",
        f"{prefix}/learners/{{learner}}",
        f"{prefix}/learners/{{learner}}/export",
        f"{prefix}/exports/{{export}}",
    }
    for name, component in document["components"]["schemas"].items():
        for field, spec in component.get("properties", {}).items():
            assert spec.get("description") or "$ref" in spec or "allOf" in spec, f"{name}.{field} undocumented"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "drf_spectacular_sidecar" in html and "cdn" not in html.lower()
    assert client.get("/api/redoc/").status_code == 200


def test_unknown_api_paths_answer_json(api):
    response = api.get("/api/v2/anything")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
