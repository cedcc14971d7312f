"""The learner page and the staff dashboard through Django's test client, plus their pure helpers."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from django.urls import reverse

from curriculum.models import Item, Prerequisite
from curriculum.services import learned_edges_store
from tests.tutor.conftest import PASSWORD, answers_simulate
from tracing.estimators import ESTIMATORS
from tracing.models import Fit
from tutor.models import Interaction, Learner
from tutor.web import dashboard, practice, svg

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}
KIND = "bkt" if "bkt" in ESTIMATORS else "rate"


@pytest.fixture(autouse=True)
def _isolated(isolated_models):
    yield


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the page has no answer form"
    return match.group(1)


def _item_of(token: str) -> Item:
    return Item.objects.get(external_id=signing.loads(token, salt=practice.TOKEN_SALT)["item"])


# --- access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, args",
    [
        ("home", []),
        ("learn", ["arithmetic"]),
        ("dashboard", []),
        ("dashboard_course", ["arithmetic"]),
        ("dashboard_fits", ["arithmetic"]),
    ],
)
def test_anonymous_users_are_sent_to_sign_in(client, db, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "name, args",
    [
        ("dashboard", []),
        ("dashboard_course", ["arithmetic"]),
        ("dashboard_items", ["arithmetic"]),
        ("dashboard_graph", ["arithmetic"]),
        ("dashboard_fits", ["arithmetic"]),
        ("dashboard_fits_table", ["arithmetic"]),
        ("dashboard_fit_status", ["arithmetic", 1]),
    ],
)
def test_non_staff_users_are_refused_the_dashboard(learner_client, name, args):
    response = learner_client.get(reverse(name, args=args))
    assert response.status_code == 403
    assert b"Not allowed" in response.content


def test_non_staff_cannot_start_a_fit(learner_client, demo_course):
    response = learner_client.post(reverse("dashboard_fits", args=["arithmetic"]), {"model": KIND})
    assert response.status_code == 403
    assert not Fit.objects.exists()


def test_sign_in_with_username_and_password(client, learner_user):
    page = client.get(reverse("login"))
    assert b"csrfmiddlewaretoken" in page.content
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    client.logout()
    refused = client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    assert refused.status_code == 200 and b"did not match" in refused.content


def test_answer_post_without_csrf_token_is_rejected(learner_user, demo_course):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner_user)
    page = strict.get(reverse("learn", args=["arithmetic"]))
    response = strict.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": _token(page.content.decode()), "response": "1"}
    )
    assert response.status_code == 403
    assert not Interaction.objects.exists()


# --- learner page -----------------------------------------------------------------------------------------


def test_first_visit_creates_the_learner_and_shows_a_question_with_its_reason(
    learner_client, learner_user, demo_course
):
    response = learner_client.get(reverse("learn", args=["arithmetic"]))
    assert response.status_code == 200
    learner = Learner.objects.get(course=demo_course, user=learner_user)
    assert learner.external_id == f"user:{learner_user.pk}"  # never the username (issue 15, item 7)
    html = response.content.decode()
    item = _item_of(_token(html))
    assert item.body.replace("'", "&#x27;") in html
    assert "Why this question?" in html
    assert "You have the prerequisites of" in html  # a fresh learner starts on the frontier
    assert html.count('name="csrfmiddlewaretoken"') >= 2  # the answer form and the sign-out form
    assert 'id="mastery"' in html


def test_learner_linked_by_an_lms_launch_is_reused(learner_client, learner_user, demo_course):
    linked = Learner.objects.create(course=demo_course, external_id="lti-sub-42", user=learner_user)
    learner_client.get(reverse("learn", args=["arithmetic"]))
    assert list(Learner.objects.filter(course=demo_course)) == [linked]


def test_a_username_taken_by_another_account_gets_its_own_learner(
    learner_client, learner_user, demo_course, django_user_model
):
    other = django_user_model.objects.create_user(username="someone-else")
    Learner.objects.create(course=demo_course, external_id="ada", user=other)
    learner_client.get(reverse("learn", args=["arithmetic"]))
    mine = Learner.objects.get(course=demo_course, user=learner_user)
    assert mine.external_id == f"user:{learner_user.pk}"


def test_right_answer_is_recorded_once_and_moves_mastery(learner_client, learner_user, demo_course):
    page = learner_client.get(reverse("learn", args=["arithmetic"])).content.decode()
    token = _token(page)
    item = _item_of(token)
    skill = item.skills.first().external_id
    learner = Learner.objects.get(course=demo_course, user=learner_user)
    before = {s.id: s.probability for s in practice.learner_progress(course=demo_course, learner=learner).skills}

    response = learner_client.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": f"  {item.answer} "}, **FETCH
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["correct"] is True and payload["duplicate"] is False
    assert "Correct" in payload["feedback"] and 'id="next-question"' in payload["feedback"]
    stored = Interaction.objects.get(learner=learner)
    assert (stored.item_id, stored.correct, stored.response) == (item.pk, 1.0, item.answer)
    assert stored.client_id.startswith("web-") and stored.response_time is not None
    after = {s.id: s.probability for s in practice.learner_progress(course=demo_course, learner=learner).skills}
    assert after[skill] > before[skill]
    bar = re.search(rf'data-skill="{re.escape(skill)}" data-percent="(\d+)"', payload["mastery"])
    assert bar and int(bar.group(1)) == round(100 * after[skill])

    again = learner_client.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": "something else"}, **FETCH
    ).json()
    assert again["duplicate"] is True and again["correct"] is True  # the stored answer, not the resent one
    assert Interaction.objects.filter(learner=learner).count() == 1


def test_wrong_answer_shows_the_answer_and_the_explanation(learner_client, demo_course):
    token = _token(learner_client.get(reverse("learn", args=["arithmetic"])).content.decode())
    item = _item_of(token)
    response = (
        item.choices[0]
        if item.choices and item.choices[0] != item.answer
        else (item.choices[1] if item.choices else "999999")
    )
    payload = learner_client.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": response}, **FETCH
    ).json()
    assert payload["correct"] is False
    assert "Not quite" in payload["feedback"]
    assert item.answer in payload["feedback"]
    assert Interaction.objects.get().correct == 0.0


def test_plain_form_post_without_javascript_renders_feedback_and_the_next_question(learner_client, demo_course):
    token = _token(learner_client.get(reverse("learn", args=["arithmetic"])).content.decode())
    item = _item_of(token)
    response = learner_client.post(
        reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": item.answer}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "feedback-right" in html
    assert _token(html) != token


def test_empty_and_forged_answers_store_nothing(learner_client, demo_course, learner_user, django_user_model):
    url = reverse("learn_answer", args=["arithmetic"])
    token = _token(learner_client.get(reverse("learn", args=["arithmetic"])).content.decode())
    assert learner_client.post(url, {"token": token, "response": "  "}, **FETCH).status_code == 400
    forged = signing.dumps(
        {"item": "place-value-01", "learner": 999, "nonce": "x", "issued": 0}, salt=practice.TOKEN_SALT
    )
    response = learner_client.post(url, {"token": forged, "response": "7"}, **FETCH)
    assert response.status_code == 409 and response.json()["stale"] is True
    assert learner_client.post(url, {"token": "garbage", "response": "7"}, **FETCH).status_code == 409
    assert not Interaction.objects.exists()


def test_question_fragment_and_mastery_page(learner_client, demo_course):
    fragment = learner_client.get(reverse("learn_question", args=["arithmetic"]))
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content and b'id="answer-form"' in fragment.content
    page = learner_client.get(reverse("learn_mastery", args=["arithmetic"])).content.decode()
    assert page.count('class="node"') == 23
    assert "locked by prerequisites" in page
    # A fresh learner: the root skill is ready to learn, its dependants are locked.
    assert re.search(r'data-skill="place-value"[^>]*><title>Place value · \d+% · in progress', page)
    assert re.search(r'data-skill="add-carry"[^>]*><title>Addition with carrying · \d+% · locked', page)


def test_unknown_course_is_404(learner_client, db):
    assert learner_client.get(reverse("learn", args=["nope"])).status_code == 404


# --- dashboard ------------------------------------------------------------------------------------------


@pytest.fixture
def busy_course(demo_course):
    answers_simulate(demo_course, learners=8, answers=20)
    return demo_course


def test_dashboard_lists_courses_with_counts(staff_client, busy_course):
    html = staff_client.get(reverse("dashboard")).content.decode()
    assert busy_course.name in html
    assert re.search(r'<td class="num">8</td>\s*<td class="num">160</td>', html)


def test_course_overview_draws_activity_heatmap_and_curves(staff_client, busy_course):
    html = staff_client.get(reverse("dashboard_course", args=["arithmetic"])).content.decode()
    assert html.count('class="chart bar-chart"') == 1
    heatmap = re.search(r'<svg[^>]*class="chart heatmap".*?</svg>', html, re.S).group(0)
    assert heatmap.count("<rect") >= 8 * 23
    assert "sim-00" in heatmap
    assert html.count('class="chart curve"') == 23
    assert "attempt 1:" in html


def test_fit_started_from_the_dashboard_runs_and_shows_metrics(
    staff_client, busy_course, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("dashboard_fits", args=["arithmetic"]), {"model": KIND, "params": ""})
    assert response.status_code == 302
    fit = Fit.objects.get()
    assert response["Location"].endswith(f"?started={fit.pk}")
    assert fit.status == Fit.SUCCEEDED and fit.active, fit.error
    html = staff_client.get(response["Location"]).content.decode()
    auc = fit.metrics["next_step"]["auc"]
    assert f"{auc:.3f}" in html
    assert 'data-running=""' in html

    status = staff_client.get(reverse("dashboard_fit_status", args=["arithmetic", fit.pk])).json()
    assert status["status"] == "succeeded" and status["finished"] is True and status["progress"] == 1.0

    items = staff_client.get(reverse("dashboard_items", args=["arithmetic"])).content.decode()
    assert f"active fit #{fit.pk}" in items
    if KIND == "bkt":
        assert re.search(r"<th[^>]*>prior</th>", items) and "learns" in items


def test_fit_form_rejects_bad_params_and_unknown_models(staff_client, busy_course):
    url = reverse("dashboard_fits", args=["arithmetic"])
    response = staff_client.post(url, {"model": KIND, "params": "{not json"})
    assert response.status_code == 400 and b"not valid JSON" in response.content
    assert staff_client.post(url, {"model": "no-such-model"}).status_code == 400
    response = staff_client.post(url, {"model": "rate", "params": '{"no_such_parameter": 1}'})
    assert response.status_code == 400 and b"bad params" in response.content
    assert not Fit.objects.exists()


def test_running_fit_progress_is_served_as_json(staff_client, busy_course):
    fit = Fit.objects.create(course=busy_course, kind=KIND, status=Fit.RUNNING, stage="evaluate:em", progress=0.37)
    page = staff_client.get(reverse("dashboard_fits", args=["arithmetic"])).content.decode()
    assert f'data-running="{fit.pk}"' in page and "evaluate:em · 37%" in page
    status = staff_client.get(reverse("dashboard_fit_status", args=["arithmetic", fit.pk])).json()
    assert status == {
        "id": fit.pk,
        "kind": KIND,
        "status": "running",
        "stage": "evaluate:em",
        "progress": 0.37,
        "active": False,
        "error": "",
        "finished": False,
        "metrics": {},
    }
    assert staff_client.get(reverse("dashboard_fit_status", args=["other", fit.pk])).status_code == 404


def test_graph_page_tells_authored_and_learned_edges_apart(staff_client, demo_course):
    fit = Fit.objects.create(course=demo_course, kind=KIND, status=Fit.SUCCEEDED)
    stored = learned_edges_store(
        course=demo_course,
        fit_pk=fit.pk,
        edges=[("compare-numbers", "decimals-basics", 0.8), ("place-value", "compare-numbers", 0.9)],
    )
    assert stored == 1  # the service keeps the authored edge where both exist
    authored = Prerequisite.objects.get(
        course=demo_course, origin="authored", source__external_id="place-value", target__external_id="compare-numbers"
    )
    Prerequisite.objects.create(
        course=demo_course, source=authored.source, target=authored.target, origin="learned", weight=0.9, fit=fit
    )  # as an older import may have left it
    html = staff_client.get(reverse("dashboard_graph", args=["arithmetic"])).content.decode()
    assert html.count('class="edge edge-learned"') == 1
    assert html.count('class="edge edge-both"') == 1
    assert html.count('class="edge edge-authored"') == 26
    assert html.count('class="node"') == 23


# --- pure helpers -----------------------------------------------------------------------------------------


def _curves_by_hand(course, max_attempts, min_answers):
    """The learning curves counted in Python, answer by answer: the oracle for the SQL."""
    skills_of: dict[int, list[int]] = {}
    for item_pk, skill_pk in Item.skills.through.objects.filter(item__course=course).values_list("item_id", "skill_id"):
        skills_of.setdefault(item_pk, []).append(skill_pk)
    attempts: dict[tuple[int, int], int] = {}
    tally: dict[tuple[int, int], list[float]] = {}
    for learner, item, correct in (
        Interaction.objects.filter(course=course)
        .order_by("learner_id", "timestamp", "id")
        .values_list("learner_id", "item_id", "correct")
    ):
        for skill in skills_of.get(item, []):
            attempts[learner, skill] = number = attempts.get((learner, skill), 0) + 1
            if number <= max_attempts:
                count = tally.setdefault((skill, number), [0, 0.0])
                count[0] += 1
                count[1] += 1.0 - correct
    curves: dict[int, list[tuple[int, float, int]]] = {}
    for (skill, number), (count, wrong) in sorted(tally.items()):
        if count >= min_answers:
            curves.setdefault(skill, []).append((number, wrong / count, count))
    return curves


def test_learning_curves_count_each_learners_attempts_per_skill_in_sql(demo_course):
    answers_simulate(demo_course, learners=6, answers=30)
    _, curves = dashboard.course_learning_curves(course=demo_course, max_attempts=4, min_answers=2)
    expected = _curves_by_hand(demo_course, max_attempts=4, min_answers=2)
    assert curves.keys() == expected.keys() and curves
    for skill, points in expected.items():
        assert [(a, c) for a, _, c in curves[skill]] == [(a, c) for a, _, c in points]
        assert [rate for _, rate, _ in curves[skill]] == pytest.approx([rate for _, rate, _ in points])


def test_parameters_are_read_per_skill_and_per_item():
    params = {
        "variant": {"forgets": False},
        "skills": {
            "a": {
                "prior": 0.2,
                "learns": 0.1,
                "answers": 40,
                "guesses": {"q1": 0.6, "q2": 0.1},
                "slips": {"q1": 0.1, "q2": 0.2},
                "priors": {"fast": 0.3},
            },
            "b": {"prior": 0.5, "learns": 0.001, "guesses": 0.2, "slips": 0.1},
        },
    }
    read = dashboard.parameters_read(params, skill_ids={"a", "b"}, item_ids={"q1", "q2", "q3"})
    assert read.skills == {
        "a": {"prior": 0.2, "learns": 0.1},
        "b": {"prior": 0.5, "learns": 0.001, "guesses": 0.2, "slips": 0.1},
    }
    assert read.items == {"q1": {"guesses": 0.6, "slips": 0.1}, "q2": {"guesses": 0.1, "slips": 0.2}}
    assert read.other == {"variant": {"forgets": False}}
    rate = dashboard.parameters_read({"skill_rate": {"a": 0.4}}, skill_ids={"a"}, item_ids=set())
    assert rate.skills == {"a": {"skill_rate": 0.4}}


def test_item_flags():
    assert [flag.label for flag in dashboard.item_flags(0.6, 0.1, 0.2)] == ["guess > slip"]
    assert [flag.label for flag in dashboard.item_flags(0.3, 0.1, 0.005)] == ["no learning"]
    assert dashboard.item_flags(0.3, 0.1, 0.2) == [] and dashboard.item_flags(None, None, None) == []


def test_layers_put_every_skill_below_its_prerequisites():
    skills = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("d", "e"), ("a", "e")]
    rows = svg.layers(skills, edges)
    depth = {skill: index for index, row in enumerate(rows) for skill in row}
    assert sorted(depth) == skills
    assert all(depth[source] < depth[target] for source, target in edges)
    assert depth == {"a": 0, "d": 0, "b": 1, "e": 1, "c": 2}


def test_svg_text_is_escaped_and_scales_are_round():
    drawn = svg.heatmap(["<script>"], ["s&1"], [[0.5]], label="x")
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn and "s&amp;1" in drawn
    assert svg._nice_max(206) == 240 and svg._nice_max(3) == 4
    assert svg.ramp_colour(0) == "#f1f5f9" and svg.ramp_colour(1) == "#1e3a8a"
    assert "no data yet" in svg.bar_chart([], [], label="empty")


# --- embedding in an LMS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("iframe", [False, True])
def test_learner_pages_may_be_framed_only_when_lti_iframes_are_on(learner_client, demo_course, settings, iframe):
    settings.TUTOR_LTI_IFRAME = iframe
    settings.TUTOR_LTI_FRAME_ANCESTORS = ["https://lms.example.edu"]
    learn = learner_client.get(reverse("learn", args=["arithmetic"]))
    dashboard_page = learner_client.get(reverse("home"))
    assert learn.status_code == 200
    if iframe:
        assert "X-Frame-Options" not in learn.headers
        assert learn.headers["Content-Security-Policy"] == "frame-ancestors 'self' https://lms.example.edu"
    else:
        assert learn.headers["X-Frame-Options"] == "DENY"
    assert dashboard_page.headers["X-Frame-Options"] == "DENY"  # only the learner pages are frameable


def test_a_web_answer_queues_the_lms_grade_passback(learner_client, demo_course, monkeypatch):
    from tutor import actions

    queued = []
    monkeypatch.setattr(actions, "lti_grade_passback_enqueue", lambda *, learner_ids: queued.append(set(learner_ids)))
    page = learner_client.get(reverse("learn", args=["arithmetic"]))
    token = _token(page.content.decode())
    item = _item_of(token)
    learner_client.post(reverse("learn_answer", args=["arithmetic"]), {"token": token, "response": item.answer})
    learner = Learner.objects.get(course__slug="arithmetic", user__username="ada")
    assert queued == [{learner.pk}]
