"""xAPI 'answered' statements become interactions (mapping documented in tutor/api/xapi.py)."""

from __future__ import annotations

import copy

import pytest

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tutor.api.xapi import duration_seconds, item_candidates
from tutor.models import Interaction

pytestmark = pytest.mark.django_db

# Appendix A of the xAPI 1.0.3 data specification ("Completion with Verb named 'attempted'..."),
# with the verb changed to answered and the activity's last path segment to an item of the course.
SPEC_EXAMPLE = {
    "id": "7ccd3322-e1a5-411a-a67d-6a735c76f119",
    "timestamp": "2015-12-18T12:17:00+00:00",
    "actor": {"objectType": "Agent", "name": "Example Learner", "mbox": "mailto:example.learner@adlnet.gov"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
    "object": {
        "id": "http://example.adlnet.gov/xapi/example/q17",
        "definition": {
            "name": {"en-US": "simple CBT course"},
            "description": {"en-US": "A fictitious example CBT course."},
        },
    },
    "result": {"score": {"scaled": 0.95}, "success": True, "completion": True, "duration": "PT1234S"},
}
PATH = "/api/v1/courses/fractions/xapi/statements"


@pytest.fixture
def course():
    return course_with_curriculum("fractions")


@pytest.fixture
def api(course):
    return client_for(key_for(course))


def test_the_spec_example_becomes_an_interaction_once(course, api):
    response = api.post(PATH, SPEC_EXAMPLE, format="json")
    assert response.status_code == 201, response.content
    stored = Interaction.objects.select_related("learner", "item").get()
    assert stored.learner.external_id == "example.learner@adlnet.gov" and stored.item.external_id == "q17"
    assert stored.correct == pytest.approx(0.95) and stored.response_time == 1234.0
    assert stored.client_id == SPEC_EXAMPLE["id"] and stored.timestamp.isoformat() == "2015-12-18T12:17:00+00:00"
    assert response.json()["results"] == [
        {"index": 0, "id": SPEC_EXAMPLE["id"], "status": "created", "interaction": stored.pk}
    ]
    assert set(response.json()["mastery"]["example.learner@adlnet.gov"]) == {"count", "add", "frac-add"}

    again = api.post(PATH, [SPEC_EXAMPLE], format="json")
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert again.json()["results"][0]["status"] == "duplicate" and Interaction.objects.count() == 1


def test_a_stream_of_statements_keeps_answers_and_reports_other_verbs(course, api):
    attempted = copy.deepcopy(SPEC_EXAMPLE) | {"id": "a0000000-0000-4000-8000-000000000001"}
    attempted["verb"] = {"id": "http://adlnet.gov/expapi/verbs/attempted"}
    by_account = {
        "id": "a0000000-0000-4000-8000-000000000002",
        "actor": {"account": {"homePage": "https://lms.example", "name": "u42"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": "https://lms.example/quiz/7#q2"},
        "result": {"success": False},
    }
    full_iri = {
        "actor": {"mbox": "mailto:x@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": "q3"},
        "result": {"score": {"scaled": -0.5}, "response": "7"},
    }
    response = api.post(PATH, [attempted, by_account, full_iri], format="json")
    assert response.status_code == 201, response.content
    assert [row["status"] for row in response.json()["results"]] == ["ignored", "created", "created"]
    assert "attempted" in response.json()["results"][0]["reason"] and response.json()["ignored"] == 1
    rows = {row.learner.external_id: row for row in Interaction.objects.select_related("learner", "item")}
    assert rows["u42"].item.external_id == "q2" and rows["u42"].correct == 0.0
    assert rows["x@example.com"].correct == 0.0 and rows["x@example.com"].response == "7"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"object": {"id": "http://example.com/unknown-question"}}, "unknown_item", "object.id"),
        ({"result": {"completion": True}}, "xapi_no_result", "result"),
        ({"result": {"score": {"scaled": 3}}}, "invalid_statement", "result.score.scaled"),
        ({"actor": {"objectType": "Agent", "name": "nameless"}}, "invalid_statement", "actor"),
        ({"verb": "answered"}, "invalid_statement", "verb.id"),
        ({"timestamp": "not a time"}, "invalid_timestamp", "timestamp"),
    ],
)
def test_a_bad_statement_fails_the_request_naming_it(course, api, change, code, field):
    good = copy.deepcopy(SPEC_EXAMPLE) | {"id": "b0000000-0000-4000-8000-000000000001"}
    bad = copy.deepcopy(SPEC_EXAMPLE) | {"id": "b0000000-0000-4000-8000-000000000002"} | change
    response = api.post(PATH, [good, bad], format="json")
    assert response.status_code == 400, response.content
    assert (response.json()["code"], response.json()["field"], response.json()["index"]) == (code, field, 1)
    assert response.json()["message"].startswith("statement 1")
    assert not Interaction.objects.exists()


def test_not_a_statement_list(api):
    assert api.post(PATH, [], format="json").json()["code"] == "invalid_type"
    assert api.post(PATH, "answered", format="json").status_code == 400
    assert api.post(PATH, [1], format="json").json()["index"] == 0


def test_mapping_helpers():
    assert item_candidates("http://example.com/activities/question%201") == (
        "http://example.com/activities/question%201",
        "question 1",
    )
    assert item_candidates("https://lms.example/quiz#q9")[1] == "q9"
    assert duration_seconds("PT4H35M59.14S") == pytest.approx(16559.14)
    assert duration_seconds("P1DT1S") == 86401.0
    assert duration_seconds("P3Y") is None and duration_seconds("PT") is None and duration_seconds(5) is None
