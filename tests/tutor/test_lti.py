"""LTI 1.3 against a real platform implementation (lti1p3platform): launch, refusals, AGS grade passback.

The platform's side runs in the test: its OIDC login and launch builder sign the
id_token; its JWKS, token and score endpoints are served by a small HTTP server
on 127.0.0.1 that validates with lti1p3platform (the tool's outbound HTTP edge).
Nothing of the tool is mocked.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from jwcrypto.jwk import JWK
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import AssignmentsGradesService, NamesRoleProvisioningService
from lti_tool.models import LtiDeployment, LtiRegistration

from tests.tutor.api_support import client_for, course_with_curriculum, key_for
from tutor.lti.models import LtiCourseLink, LtiGradeTarget
from tutor.lti.services import learner_grade, lti_grade_passback
from tutor.models import Learner

pytestmark = pytest.mark.django_db

ISSUER = "https://lms.example"
CLIENT_ID = "tutor-tool"
LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def _key_pair() -> tuple[str, str]:
    key = JWK.generate(kty="RSA", size=2048)
    return key.export_to_pem().decode(), key.export_to_pem(private_key=True, password=None).decode()


PLATFORM_PUBLIC, PLATFORM_PRIVATE = _key_pair()
STRANGER_PUBLIC, STRANGER_PRIVATE = _key_pair()


class PlainRequest(Request):
    def __init__(
        self,
        *,
        method: str = "GET",
        get: dict | None = None,
        form: dict | None = None,
        headers: dict | None = None,
        body: Any = None,
    ) -> None:
        self.request = {
            "method": method,
            "form_data": form or {},
            "get_data": get or {},
            "headers": headers or {},
            "content_type": "application/json",
            "path": "/",
            "json": body,
        }


class Platform(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, registration: Registration) -> None:
        self._registration = registration

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration


class Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class Launch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict, **kwargs: Any) -> dict:
        return launch_data


class Gradebook(AssignmentsGradesService):
    """The LMS's line item 1; scores that pass the platform's token check land in ``scores``."""

    scores: list[dict] = []
    columns: list[dict] = []

    def update_score(self, line_item_id: str, score: dict) -> UpdateScoreStatus:
        self.scores.append({"line_item": line_item_id, **score})
        return UpdateScoreStatus.SUCCESS

    def find_lineitems(self, **kwargs: Any) -> dict:
        return {"content": list(self.columns), "has_next": False}

    def find_lineitem(self, line_item_id: str) -> dict:
        return {"id": line_item_id}

    def create_lineitem(self, creation_data: dict) -> dict:
        column = {**creation_data, "id": f"{self.ags.lineitems_url}/{len(self.columns) + 2}"}
        self.columns.append(column)
        return column

    def update_lineitem(self, update_data: dict) -> dict:
        return update_data

    def delete_lineitem(self, line_item_id: str) -> None:
        return None

    def get_results(self, line_item_id: str, **kwargs: Any) -> dict:
        return {"content": [], "has_next": False}


class Roster(NamesRoleProvisioningService):
    """The LMS context's members (NRPS), ``page_size`` a page; the platform checks the tool's token."""

    members: list[dict] = []
    page_size = 2

    def get_member_data_page(self, page: Any = 1, **kwargs: Any) -> dict:
        start = (int(page) - 1) * self.page_size
        return {
            "content": [dict(member) for member in self.members[start : start + self.page_size]],
            "has_next": start + self.page_size < len(self.members),
        }

    def get_context_by_id(self) -> Context:
        return Context(id="context-7", label="F101", title="Fractions 101")


class LmsServer:
    """The platform's JWKS, token, AGS score and NRPS membership endpoints on 127.0.0.1."""

    def __init__(self) -> None:
        self.platform: Platform | None = None
        self.scores: list[dict] = []
        self.columns: list[dict] = []
        self.refusals: list[str] = []
        self.members: list[dict] = []
        self.roster_requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _gradebook(self, body: Any = None, line_item: str | None = None) -> Gradebook:
                request = PlainRequest(method=self.command, headers=dict(self.headers.items()), body=body)
                service = Gradebook(
                    request,
                    outer.platform,
                    lineitems_url=f"{outer.url}/lineitems",
                    lineitem_url=f"{outer.url}/lineitems/{line_item}" if line_item else None,
                )
                service.scores, service.columns = outer.scores, outer.columns
                return service

            def _serve(self, service: Gradebook, handler: Any, **kwargs: Any) -> None:
                response = service.handle_resp(handler, **kwargs)
                if response.code >= 400:
                    outer.refusals.append(f"{self.command} {self.path}: {response.code} {response.message}")
                result = response.result
                self._answer(
                    response.code,
                    result["content"]
                    if isinstance(result, dict) and "content" in result
                    else result
                    if result is not None
                    else {"status": response.message},
                )

            def do_GET(self) -> None:
                if self.path == "/jwks":
                    self._answer(200, outer.platform.get_jwks())
                elif self.path.startswith("/memberships"):
                    outer.roster_requests += 1
                    query = dict(parse_qsl(urlsplit(self.path).query))
                    request = PlainRequest(method="GET", get=query, headers=dict(self.headers.items()))
                    service = Roster(request, outer.platform, context_memberships_url=f"{outer.url}/memberships")
                    service.members = outer.members
                    response = service.handle_resp(service.handle_get_members)
                    if response.code >= 400:
                        outer.refusals.append(f"GET {self.path}: {response.code} {response.message}")
                        self._answer(response.code, {"error": response.message})
                        return
                    page = int(query.get("page", 1))
                    body = response.result
                    self.send_response(200)
                    if page * Roster.page_size < len(outer.members):  # NRPS pages by a Link header
                        self.send_header("Link", f'<{outer.url}/memberships?page={page + 1}>; rel="next"')
                    data = json.dumps(body).encode()
                    self.send_header("Content-Type", "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path.startswith("/lineitems"):
                    service = self._gradebook()
                    self._serve(service, service.handle_get_lineitems)
                else:
                    self._answer(404, {})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.path == "/token":
                    try:
                        self._answer(200, outer.platform.get_access_token(dict(parse_qsl(raw))))
                    except Exception as error:  # the platform refuses the tool's assertion
                        outer.refusals.append(f"token: {error}")
                        self._answer(400, {"error": "invalid_client"})
                    return
                if self.path.startswith("/lineitems/") and self.path.endswith("/scores"):
                    line_item = self.path.split("/")[2]
                    service = self._gradebook(json.loads(raw), line_item)
                    self._serve(service, service.handle_update_score, line_item_id=line_item)
                elif self.path == "/lineitems":
                    service = self._gradebook(json.loads(raw))
                    self._serve(service, service.handle_create_lineitem)
                else:
                    self._answer(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LmsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lms():
    with LmsServer() as server:
        yield server


@pytest.fixture
def course():
    return course_with_curriculum("fractions")


@pytest.fixture
def tool(course, lms, client):
    """The tool's side, set up as an admin would: registration, active deployment, course link."""
    registration = LtiRegistration.objects.create(
        name="Test LMS",
        issuer=ISSUER,
        client_id=CLIENT_ID,
        auth_url=f"{ISSUER}/auth",
        token_url=f"{lms.url}/token",
        keyset_url=f"{lms.url}/jwks",
    )
    deployment = LtiDeployment.objects.create(registration=registration, deployment_id="dep-1", is_active=True)
    LtiCourseLink.objects.create(deployment=deployment, context_id="", course=course)
    lms.tool_jwks = client.get("/lti/jwks/").json()
    return registration


def platform_for(lms: LmsServer, *, deployment: str = "dep-1", issuer: str = ISSUER) -> Platform:
    registration = (
        Registration()
        .set_iss(issuer)
        .set_client_id(CLIENT_ID)
        .set_deployment_id(deployment)
        .set_launch_url("http://testserver/lti/launch/")
        .set_oidc_login_url("http://testserver/lti/login/")
        .set_platform_public_key(PLATFORM_PUBLIC)
        .set_platform_private_key(PLATFORM_PRIVATE)
        .set_tool_key_set(lms.tool_jwks)  # type: ignore[attr-defined]  # set by the fixture
    )
    lms.platform = Platform(registration=registration)
    return lms.platform


def launch_form(
    client,
    lms: LmsServer,
    *,
    user: str = "student-1",
    expiration: int | None = None,
    own_line_item: bool = True,
    roles: list[str] | None = None,
    name: str = "Ada Lovelace",
    context: str = "context-7",
    context_title: str = "Fractions 101",
    roster: bool = False,
    deep_link_return: str | None = None,
    custom: dict | None = None,
    line_item: str | None = None,
    **platform_options: Any,
) -> dict:
    """The browser's trip: platform login initiation -> tool -> platform auth -> the signed launch form."""
    platform = platform_for(lms, **platform_options)
    if deep_link_return:
        platform.get_registration().set_deeplink_launch_url("http://testserver/lti/launch/")
    login = Login(None, platform)
    login.set_lti_message_hint(hint="resource-link-1")
    preflight = login.initiate_login(user)
    check = client.get(preflight)
    assert check.status_code == 200 and b"lti1p3_new_window" in check.content  # the cookie check page
    redirect = client.get(preflight + "&lti1p3_new_window=1")
    assert redirect.status_code == 302, redirect.content
    assert redirect["Location"].startswith(f"{ISSUER}/auth?")
    auth_request = dict(parse_qsl(urlsplit(redirect["Location"]).query))
    launch = Launch(PlainRequest(get=auth_request), platform)
    launch.set_user_data(
        user, roles or [LEARNER_ROLE], full_name=name, email_address=f"{name.split()[0].lower()}@example.com"
    )
    launch.set_resource_link_claim("resource-link-1", title="Practice fractions")
    launch.set_launch_context_claim(context, context_title=context_title)
    if roster:
        launch.set_nrps(context_memberships_url=f"{lms.url}/memberships")
    if deep_link_return:
        launch.set_dl(
            deep_link_return, title="Add a tool", accept_types={"ltiResourceLink"}, extra_data={"opaque": "lms-state"}
        )
    if custom:
        launch.set_custom_parameters_claim(custom)
    launch.set_ags(
        lineitems_url=f"{lms.url}/lineitems",
        lineitem_url=line_item or (f"{lms.url}/lineitems/1" if own_line_item else None),
    )
    if expiration is not None:
        launch.set_id_token_expiration(expiration)
    form = launch.lti_launch()
    assert form["launch_url"] == "http://testserver/lti/launch/"
    return {"id_token": form["id_token"], "state": form["state"]}


def test_launch_signs_the_learner_in_and_mastery_reaches_the_gradebook(
    client, lms, tool, course, django_capture_on_commit_callbacks
):
    response = client.post("/lti/launch/", launch_form(client, lms))
    assert response.status_code == 302, response.content
    assert response["Location"] == "/learn/fractions/"
    learner = Learner.objects.select_related("user").get(course=course, external_id="student-1")
    assert str(learner.user.pk) == client.session["_auth_user_id"] and learner.user.email == "ada@example.com"
    target = LtiGradeTarget.objects.get(learner=learner)
    assert target.lineitem_url == f"{lms.url}/lineitems/1" and target.resource_link_id == "resource-link-1"

    api = client_for(key_for(course))
    rows = [
        {
            "id": f"r{step}",
            "learner": "student-1",
            "item": ["q1", "q2", "q17"][step % 3],
            "correct": step % 2,
            "timestamp": f"2026-11-25T10:0{step}:00Z",
        }
        for step in range(5)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 201
    assert lms.refusals == []
    assert len(lms.scores) == 1
    score = lms.scores[0]
    mean = api.get("/api/v1/courses/fractions/learners/student-1/mastery").json()["mean"]
    assert score["userId"] == "student-1" and score["line_item"] == "1"
    assert score["scoreMaximum"] == 100 and score["scoreGiven"] == pytest.approx(100 * mean, abs=1e-3)
    assert 0 < score["scoreGiven"] < 100 and score["gradingProgress"] == "FullyGraded"
    target.refresh_from_db()
    assert target.last_error == "" and target.last_score == pytest.approx(learner_grade(learner=learner))

    # A retried batch stores nothing, so nothing new goes to the gradebook.
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/courses/fractions/interactions", rows, format="json").status_code == 200
    assert len(lms.scores) == 1


def test_without_a_line_item_the_tool_creates_its_mastery_column_once(client, lms, tool, course):
    assert client.post("/lti/launch/", launch_form(client, lms, own_line_item=False)).status_code == 302
    learner = Learner.objects.get(course=course, external_id="student-1")
    assert [outcome.ok for outcome in lti_grade_passback(learner=learner)] == [True]
    assert [outcome.ok for outcome in lti_grade_passback(learner=learner)] == [True]
    assert lms.refusals == []
    assert [column["tag"] for column in lms.columns] == ["kt-mastery"]
    assert lms.columns[0]["resourceLinkId"] == "resource-link-1" and lms.columns[0]["scoreMaximum"] == 100
    assert [score["line_item"] for score in lms.scores] == ["2", "2"]
    assert lms.scores[0]["scoreGiven"] == 0.0  # no answers yet: nothing is known


def test_a_gradebook_that_refuses_the_tool_is_recorded_not_raised(client, lms, tool, course):
    client.post("/lti/launch/", launch_form(client, lms))
    learner = Learner.objects.get(course=course, external_id="student-1")
    lms.platform.get_registration().set_tool_key_set({"keys": [Registration.get_jwk(STRANGER_PUBLIC)]})
    outcomes = lti_grade_passback(learner=learner)
    assert [outcome.ok for outcome in outcomes] == [False]
    assert lms.scores == [] and lms.refusals and lms.refusals[0].startswith("token")
    assert "400" in LtiGradeTarget.objects.get(learner=learner).last_error


def _resigned(token: str, private_key: str) -> str:
    header = jwt.get_unverified_header(token)
    payload = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(payload, private_key, algorithm="RS256", headers={"kid": header["kid"]})


@pytest.mark.parametrize(
    "attack",
    [
        "bad_signature",
        "expired",
        "replayed",
        "unknown_deployment",
        "unlinked_deployment",
        "unknown_issuer",
        "tampered_claims",
    ],
)
def test_invalid_launches_are_refused_with_a_page_and_logged(client, lms, tool, course, caplog, attack):
    options: dict[str, Any] = {}
    if attack == "expired":
        options["expiration"] = -120
    elif attack == "unknown_deployment":
        options["deployment"] = "dep-nobody-enabled"
    elif attack == "unlinked_deployment":
        LtiDeployment.objects.create(registration=tool, deployment_id="dep-2", is_active=True)
        options["deployment"] = "dep-2"
    elif attack == "unknown_issuer":
        LtiRegistration.objects.create(
            name="Other",
            issuer="https://other.example",
            client_id=CLIENT_ID,
            auth_url=f"{ISSUER}/auth",
            token_url=f"{lms.url}/token",
            keyset_url=f"{lms.url}/jwks",
        )
        options["issuer"] = "https://other.example"
    form = launch_form(client, lms, **options)
    if attack == "unknown_issuer":
        LtiRegistration.objects.filter(issuer="https://other.example").delete()
    if attack == "bad_signature":
        form["id_token"] = _resigned(form["id_token"], STRANGER_PRIVATE)
    if attack == "tampered_claims":
        header, payload, signature = form["id_token"].split(".")
        claims = jwt.decode(form["id_token"], options={"verify_signature": False}) | {"sub": "teacher"}
        forged = jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")[1]
        form["id_token"] = ".".join([header, forged, signature])
    if attack == "replayed":
        assert client.post("/lti/launch/", form).status_code == 302
        client.logout()
    with caplog.at_level(logging.WARNING, logger="tutor.lti.views"):
        response = client.post("/lti/launch/", form)
    assert 400 <= response.status_code < 500, response.content
    assert b"could not be opened" in response.content
    assert any("refused" in record.getMessage() for record in caplog.records)
    assert "_auth_user_id" not in client.session
    if attack != "replayed":
        assert not Learner.objects.filter(course=course).exists()


def test_launch_endpoints_refuse_strays(client, tool):
    assert client.post("/lti/launch/", {}).status_code == 400
    assert client.get("/lti/launch/").status_code == 405
    assert (
        client.get(
            "/lti/login/",
            {
                "iss": "https://nobody.example",
                "login_hint": "x",
                "target_link_uri": "http://testserver/lti/launch/",
                "lti1p3_new_window": "1",
            },
        ).status_code
        == 400
    )
    keys = client.get("/lti/jwks/").json()["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "RS256" and "d" not in keys[0]
