"""A course's exports: CSV of interactions, mastery and fitted parameters, and xAPI statements that the
xAPI endpoint maps back to the same answers, streamed from the API, the dashboard and the command, or
posted to a learning record store (a local HTTP server here)."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tracing.models import Fit, Mastery
from tracing.services import fit_run
from tutor import exports
from tutor.actions import answers_record
from tutor.exports import LrsFailed, parameter_rows, statements_post
from tutor.models import ApiKey, Interaction

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BASE = "/api/v1/courses/fractions/exports"


@pytest.fixture
def course(settings, tmp_path):
    """Answers of every shape the exports must carry: UUID ids, other ids, no id, partial scores, response
    times, free text with commas, quotes and a line break, an item id that is an IRI."""
    settings.ARTIFACT_ROOT = tmp_path
    course = course_with_curriculum("fractions")
    from curriculum.services import curriculum_import

    curriculum_import(course=course, document={"items": [{"id": "http://items.example/q/99", "skills": ["add"]}]})
    rows = []
    for step in range(24):
        row: dict[str, Any] = {
            "learner": f"learner-{step % 4}",
            "item": ["q1", "q2", "q3", "q17", "http://items.example/q/99"][step % 5],
            "correct": [1, 0, 0.5, 1][step % 4],
            "timestamp": (START + timedelta(minutes=step)).isoformat(),
        }
        if step % 3 == 0:
            row["id"] = str(uuid.UUID(int=step + 1))
        elif step % 3 == 1:
            row["id"] = f"lms-{step}"
        if step % 2:
            row["response_time"] = 1.25 + step
        if step % 5 == 0:
            row["response"] = f'"{step}", or\nsomething, {step}'
        rows.append(row)
    answers_record(course=course, rows=rows)
    return course


@pytest.fixture
def api(course):
    return client_for(key_for(course))


def streamed(response) -> str:
    assert response.status_code == 200, response.content if not response.streaming else b""
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_interactions_csv_streams_every_answer(course, api, settings, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_BYTES", 256)  # several chunks: the response is written as it is read
    response = api.get(f"{BASE}/interactions.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="fractions-interactions.csv"'
    chunks = list(response.streaming_content)
    assert len(chunks) > 3
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    stored = Interaction.objects.filter(course=course).order_by("pk").select_related("learner", "item")
    assert len(rows) == stored.count() == 24
    for row, interaction in zip(rows, stored):
        assert row["id"] == str(interaction.pk) and row["learner"] == interaction.learner.external_id
        assert row["item"] == interaction.item.external_id and float(row["correct"]) == interaction.correct
        assert row["timestamp"] == interaction.timestamp.isoformat() and row["response"] == interaction.response
        assert row["client_id"] == (interaction.client_id or "")
        assert row["response_time"] == ("" if interaction.response_time is None else str(interaction.response_time))


def test_mastery_and_parameters_csv(course, api):
    assert api.get(f"{BASE}/parameters.csv").json()["code"] == "not_found"  # no active fit yet
    fit = fit_run(fit_id=Fit.objects.create(course=course, kind="bkt", params={}).pk)
    assert fit.status == Fit.SUCCEEDED, fit.error
    mastery = list(csv.DictReader(io.StringIO(streamed(api.get(f"{BASE}/mastery.csv")))))
    assert len(mastery) == Mastery.objects.filter(learner__course=course).count() == 4 * 3
    assert {row["learner"] for row in mastery} == {f"learner-{n}" for n in range(4)}
    assert all(0 <= float(row["probability"]) <= 1 and row["fit"] == str(fit.pk) for row in mastery)
    parameters = list(csv.DictReader(io.StringIO(streamed(api.get(f"{BASE}/parameters.csv")))))
    priors = {row["skill"]: float(row["value"]) for row in parameters if row["parameter"] == "skills.prior"}
    assert priors.keys() == {"count", "add", "frac-add"}
    assert priors["add"] == pytest.approx(fit.fitted_params["skills"]["add"]["prior"])
    assert {row["fit"] for row in parameters} == {str(fit.pk)} and {row["model"] for row in parameters} == {"bkt"}
    assert api.get(f"{BASE}/parameters.csv?fit=999999").status_code == 404
    assert api.get(f"{BASE}/parameters.csv?fit=x").status_code == 400


def test_parameter_rows_find_skills_and_items_in_any_layout():
    params = {
        "skills": {"add": {"prior": 0.2, "guesses": {"q1": 0.1}}},
        "item_rate": {"q2": 0.7},
        "note": "v2",
        "bad": float("nan"),
        "list": [1, 2],
    }
    assert list(parameter_rows(params, skills={"add"}, items={"q1", "q2"})) == [
        ("skills.prior", "add", "", 0.2),
        ("skills.guesses", "add", "q1", 0.1),
        ("item_rate", "", "q2", 0.7),
        ("note", "", "", "v2"),
        ("list.0", "", "", 1),
        ("list.1", "", "", 2),
    ]


def _answers(course) -> Counter:
    return Counter(
        (learner, item, correct, timestamp, response_time, response)
        for learner, item, correct, timestamp, response_time, response in Interaction.objects.filter(
            course=course
        ).values_list("learner__external_id", "item__external_id", "correct", "timestamp", "response_time", "response")
    )


def test_statements_go_back_in_through_the_xapi_endpoint_as_the_same_answers(course, api):
    lines = streamed(api.get(f"{BASE}/statements.jsonl")).splitlines()
    statements = [json.loads(line) for line in lines]
    assert len(statements) == 24 and len({statement["id"] for statement in statements}) == 24
    assert all(uuid.UUID(statement["id"]) for statement in statements)
    first = statements[0]
    assert first["id"] == str(uuid.UUID(int=1)) and first["verb"]["id"] == exports.ANSWERED
    assert first["actor"]["account"]["name"] == "learner-0"
    assert first["object"]["id"] == "http://localhost:8000/courses/fractions/items/q1"

    copy = course_with_curriculum("copy")
    from curriculum.services import curriculum_import

    curriculum_import(course=copy, document={"items": [{"id": "http://items.example/q/99", "skills": ["add"]}]})
    response = client_for(key_for(copy)).post("/api/v1/courses/copy/xapi/statements", statements, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 24 and response.json()["ignored"] == 0
    assert _answers(copy) == _answers(course)

    again = api.post("/api/v1/courses/fractions/xapi/statements", statements, format="json").json()
    assert again["duplicates"] == 8  # the answers whose id was a UUID came back under their own id
    exported_again = [json.loads(line) for line in streamed(api.get(f"{BASE}/statements.jsonl")).splitlines()]
    assert [statement["id"] for statement in exported_again[:24]] == [statement["id"] for statement in statements]


class Lrs:
    """A learning record store's statements resource on 127.0.0.1: keeps what it is sent, answers
    ``status`` (200 with the ids, as xAPI says) and checks basic auth."""

    def __init__(self, *, status: int = 200) -> None:
        self.batches: list[list[dict]] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                lrs.batches.append(body)
                lrs.headers.append(dict(self.headers))
                payload = json.dumps(
                    [statement["id"] for statement in body] if lrs.status == 200 else {"error": "refused"}
                ).encode()
                self.send_response(lrs.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xapi/statements"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Lrs:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_statements_are_posted_to_a_learning_record_store_in_batches(course):
    with Lrs() as lrs:
        sent = statements_post(course=course, endpoint=lrs.url, username="tutor", password="s3cret", batch=10)
    assert sent == 24 and [len(batch) for batch in lrs.batches] == [10, 10, 4]
    headers = lrs.headers[0]
    assert headers["X-Experience-API-Version"] == "1.0.3" and headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"tutor:s3cret").decode()
    assert [statement["id"] for batch in lrs.batches for statement in batch] == [
        statement["id"] for statement in exports.statements(course=course)
    ]


def test_a_refusing_or_absent_store_stops_the_export_with_its_reason(course):
    with Lrs(status=400) as lrs:
        with pytest.raises(LrsFailed, match="answered 400 after 0 statements"):
            statements_post(course=course, endpoint=lrs.url, batch=10)
    assert len(lrs.batches) == 1
    with pytest.raises(LrsFailed, match="could not be reached"):
        statements_post(course=course, endpoint=lrs.url, batch=10, timeout=2)
    with Lrs(status=401) as lrs, pytest.raises(CommandError, match="answered 401"):
        call_command("course_export", "--course", "fractions", "--lrs", lrs.url)


def test_the_command_writes_a_file_or_posts_to_a_store(course, tmp_path):
    out = tmp_path / "statements.jsonl"
    call_command("course_export", "--course", "fractions", "--export", "statements.jsonl", "--out", str(out))
    assert len(out.read_text().splitlines()) == 24
    with Lrs() as lrs:
        call_command(
            "course_export", "--course", "fractions", "--lrs", lrs.url, "--lrs-user", "u", "--lrs-password", "p"
        )
    assert sum(map(len, lrs.batches)) == 24
    with pytest.raises(CommandError, match="no active fit"):
        call_command("course_export", "--course", "fractions", "--export", "parameters.csv", "--out", str(out))


def test_exports_need_a_key_of_the_course_and_name_a_known_export(course, api, client, django_user_model):
    other = course_with_curriculum("other")
    assert client_for(key_for(other)).get(f"{BASE}/interactions.csv").status_code == 404
    assert client_for(None).get(f"{BASE}/interactions.csv").status_code == 401
    assert client_for(key_for(None, name="global")).get(f"{BASE}/mastery.csv").status_code == 200
    missing = api.get(f"{BASE}/grades.xlsx", HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404 and missing.json()["field"] == "export"
    assert ApiKey.objects.count() == 3

    client.force_login(django_user_model.objects.create_user("grace", is_staff=True))
    download = client.get("/dashboard/fractions/exports/statements.jsonl")
    assert download["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert len(streamed(download).splitlines()) == 24
    assert client.get("/dashboard/fractions/exports/parameters.csv").status_code == 404
    assert client.get("/dashboard/fractions/exports/nothing.csv").status_code == 404


def test_the_schema_documents_the_exports_and_the_privacy_endpoints(api):
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    export = paths["/api/v1/courses/{course}/exports/{export}"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert "delete" in paths["/api/v1/courses/{course}/learners/{learner}"]
    assert "get" in paths["/api/v1/courses/{course}/learners/{learner}/export"]
    assert "erased_learners" in schema["components"]["schemas"]["FitOut"]["properties"]
