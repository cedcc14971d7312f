"""The learner page and the dashboard in Debian's headless chromium, driven by Playwright against live_server.

Each main page is saved as a screenshot under test-artifacts/; with
UPDATE_SCREENSHOTS=1 the README's copies in docs/screenshots/ are refreshed too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core import signing

from tests.tutor.conftest import PASSWORD, answers_simulate, demo_course_create
from tracing.estimators import ESTIMATORS
from tracing.models import Fit
from tutor.models import Interaction
from tutor.web import practice

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KIND = "bkt" if "bkt" in ESTIMATORS else "rate"
TIMEOUT_MS = 15_000

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make beside it are safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(autouse=True)
def _isolated(isolated_models):
    yield


class Console:
    """Errors the page logged or threw, so a test can assert there were none."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))


def _page(browser, live_server, *, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    return page, Console(page)


def _sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def _screenshot(page, name: str, *, readme: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if readme and os.environ.get("UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = min(page.evaluate("document.documentElement.scrollHeight"), 1300)
        page.screenshot(
            path=str(SCREENSHOTS / f"{name}.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height},
        )
    assert path.stat().st_size > 5_000


def _current_item(page):
    from curriculum.models import Item

    token = page.locator("#answer-form input[name=token]").input_value()
    return Item.objects.get(external_id=signing.loads(token, salt=practice.TOKEN_SALT)["item"])


def _answer(page, item, *, right: bool, focused: bool = True) -> None:
    """Answer the question on the page with the keyboard: type and Enter, or focus a choice and Enter.

    ``focused``: the answer field must already have the focus (it gets it when a question appears).
    """
    if item.choices:
        choice = item.answer if right else next(c for c in item.choices if c != item.answer)
        button = page.locator("#answer-form button.choice", has_text=choice).first
        button.focus()
        page.keyboard.press("Enter")
    else:
        field = page.locator("#response")
        if focused:
            assert field.evaluate("element => element === document.activeElement"), "the answer field has the focus"
        field.fill(item.answer if right else "123456789")
        page.keyboard.press("Enter")
    page.locator("#feedback").wait_for()


AXE = ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


def _axe(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands ('rule: target' each)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
        for node in violation["nodes"]
    ]


def _percent(page, skill: str) -> int:
    return int(page.locator(f'#mastery .skill-bar[data-skill="{skill}"]').get_attribute("data-percent"))


def test_learner_signs_in_answers_and_sees_mastery_move(browser, live_server, learner_user):
    course = demo_course_create()
    page, console = _page(browser, live_server)
    _sign_in(page, "ada")
    page.get_by_role("link", name="Start").click()
    page.wait_for_url(f"**/learn/{course.slug}/")
    assert page.locator("#question-body").inner_text()
    if page.locator("#response").count():
        assert page.evaluate("document.activeElement.id") == "response"
    page.locator("details.reason summary").click()
    assert "prerequisites" in page.locator("details.reason p").inner_text()

    item = _current_item(page)
    skill = item.skills.first().external_id
    before = _percent(page, skill)
    _answer(page, item, right=True, focused=False)
    assert "Correct" in page.locator("#feedback .feedback-title").inner_text()
    page.wait_for_function(f"""() => {{
        const bar = document.querySelector('#mastery .skill-bar[data-skill="{skill}"]');
        return bar && Number(bar.dataset.percent) > {before};
    }}""")
    _screenshot(page, "learner-practice", readme=True)

    answered = 1
    for right in (False, True, True):
        # The feedback has the focus (a screen reader reads it); Enter there brings the next question
        # without a reload, and the focus moves to its answer.
        assert page.locator("#feedback").evaluate("element => element === document.activeElement")
        page.keyboard.press("Enter")
        page.locator("#question:not(.answered)").wait_for()
        assert page.locator("#feedback").count() == 0
        item = _current_item(page)
        assert page.evaluate("document.activeElement.closest('#question') !== null"), "focus on the new question"
        _answer(page, item, right=right)
        answered += 1
        title = page.locator("#feedback .feedback-title").inner_text()
        assert ("Correct" in title) if right else ("Not quite" in title)
        if not right:
            assert item.answer in page.locator("#feedback").inner_text()
    assert Interaction.objects.filter(course=course, learner__user=learner_user).count() == answered
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded

    page.goto(f"/learn/{course.slug}/mastery/")
    assert page.locator("svg.graph g.node").count() == 23
    assert page.locator(f'svg.graph g.node[data-skill="{skill}"] rect').get_attribute("fill") != "#f1f5f9"
    _screenshot(page, "learner-mastery", readme=True)
    assert console.errors == []
    page.context.close()


def test_learner_page_fits_a_phone(browser, live_server, learner_user):
    course = demo_course_create()
    page, console = _page(browser, live_server, width=375, height=812)
    _sign_in(page, "ada")
    for path in (f"/learn/{course.slug}/", f"/learn/{course.slug}/mastery/", "/"):
        page.goto(path)
        # The skill map may scroll inside its own box; the page itself must not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    page.goto(f"/learn/{course.slug}/")
    box = page.locator("#question").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    _answer(page, _current_item(page), right=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _screenshot(page, "learner-practice-phone")
    assert console.errors == []
    page.context.close()


@pytest.mark.slow
def test_staff_starts_a_fit_and_follows_it(browser, live_server, staff_user):
    course = demo_course_create()
    answers_simulate(course, learners=10, answers=20)
    page, console = _page(browser, live_server)
    _sign_in(page, "grace")
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name=course.name).click()
    page.wait_for_url(f"**/dashboard/{course.slug}/")
    assert page.locator("svg.heatmap rect").count() >= 10 * 23
    assert page.locator("svg.bar-chart").count() == 1 and page.locator("svg.curve").count() == 23
    _screenshot(page, "dashboard-course-unfitted")

    page.get_by_role("link", name="Prerequisites").click()
    assert page.locator("svg.graph path.edge-authored").count() == 27
    _screenshot(page, "dashboard-graph")

    page.get_by_role("link", name="Fits").click()
    page.get_by_label("Model").select_option(KIND)
    page.get_by_role("button", name="Start fit").click()  # Celery is eager here: the fit runs in the request
    row = page.locator("tr.fit-row").first
    row.locator(".badge-succeeded").wait_for()
    fit = Fit.objects.get(course=course)
    assert fit.active and row.get_attribute("id") == f"fit-{fit.pk}"
    auc = row.locator("td.num").first.inner_text()
    assert auc == f"{fit.metrics['next_step']['auc']:.3f}"
    assert row.locator(".badge-active").count() == 1
    _screenshot(page, "dashboard-fits", readme=True)

    # A fit running in a worker: the page follows its progress without reloading, then shows its metrics.
    running = Fit.objects.create(course=course, kind="rate", status=Fit.RUNNING, stage="evaluate:fit", progress=0.2)
    page.reload()
    progress = page.locator(f"#fit-{running.pk} .progress")
    assert progress.get_attribute("aria-valuenow") == "20"
    Fit.objects.filter(pk=running.pk).update(progress=0.65, stage="fit")
    page.wait_for_function(
        f"document.querySelector('#fit-{running.pk} .progress').getAttribute('aria-valuenow') === '65'"
    )
    assert "fit · 65%" in page.locator(f"#fit-{running.pk} [data-role=stage]").inner_text()
    _screenshot(page, "dashboard-fits-running")
    Fit.objects.filter(pk=running.pk).update(
        status=Fit.SUCCEEDED,
        progress=1.0,
        stage="done",
        metrics={"next_step": {"auc": 0.612, "rmse": 0.47, "logloss": 0.64, "accuracy": 0.66, "n": 40}},
    )
    page.locator(f"#fit-{running.pk} td.num", has_text="0.612").wait_for()  # the table was fetched again
    assert page.locator(f"#fit-{running.pk} .badge-succeeded").count() == 1
    assert page.locator(f"#fit-{running.pk} .progress").count() == 0
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"  # polled, not reloaded
    _screenshot(page, "dashboard-fits-polled")

    page.get_by_role("link", name="Items").click()
    assert page.locator("#item-table tbody tr").count() == 278
    _screenshot(page, "dashboard-items")
    page.get_by_role("link", name="Overview").click()
    page.locator("svg.heatmap").wait_for()
    _screenshot(page, "dashboard-course", readme=True)
    assert console.errors == []
    page.context.close()


def test_non_staff_user_is_refused_the_dashboard(browser, live_server, learner_user):
    page, console = _page(browser, live_server)
    _sign_in(page, "ada")
    assert page.get_by_role("link", name="Dashboard").count() == 0
    response = page.goto("/dashboard/")
    assert response.status == 403
    assert "Not allowed" in page.locator("h1").inner_text()
    assert all("403" in error for error in console.errors)  # the refused document itself, nothing else
    page.context.close()

    anonymous, _ = _page(browser, live_server)
    anonymous.goto("/dashboard/")
    assert "/accounts/login/?next=/dashboard/" in anonymous.url
    anonymous.context.close()


def test_a_learner_sees_only_their_courses_and_a_guesser_gets_the_lockout_page(browser, live_server, learner_user):
    from tests.tutor.api_support import course_with_curriculum

    demo_course_create()
    course_with_curriculum("closed-course")  # nobody enrolled ada in it
    page, console = _page(browser, live_server)
    _sign_in(page, "ada")
    page.goto("/")
    titles = page.locator(".course-card h2").all_inner_texts()
    assert titles == ["Arithmetic: from place value to fractions"]
    assert page.goto("/learn/closed-course/").status == 404
    page.context.close()

    guesser, _ = _page(browser, live_server)
    for _ in range(5):
        guesser.goto("/accounts/login/")
        guesser.get_by_label("Username").fill("ada")
        guesser.get_by_label("Password").fill("not the password")
        guesser.get_by_label("Password").press("Enter")
        guesser.wait_for_load_state()
    guesser.goto("/accounts/login/")
    guesser.get_by_label("Username").fill("ada")
    guesser.get_by_label("Password").fill(PASSWORD)
    guesser.get_by_label("Password").press("Enter")
    guesser.locator("h1", has_text="Too many failed sign-ins").wait_for()
    assert "/accounts/login/" in guesser.url
    _screenshot(guesser, "sign-in-locked")
    guesser.context.close()
    assert [error for error in console.errors if "404" not in error] == []


@pytest.mark.slow
def test_thirty_answers_on_one_skill_show_no_question_twice_while_unseen_ones_remain(
    browser, live_server, learner_user
):
    from curriculum.services import graph_for_course

    course = demo_course_create()
    # More answers than the walk gives are needed for mastery: the skill stays the one practised.
    course.policy = {"min_answers": 40}
    course.save(update_fields=["policy"])
    graph = graph_for_course(course=course)
    goal = graph.topological_order()[0]  # a root skill: nothing to send the learner back to
    page, console = _page(browser, live_server)
    _sign_in(page, "ada")
    page.goto(f"/learn/{course.slug}/")
    page.get_by_label("Your goal").select_option(goal)
    page.get_by_role("button", name="Set goal").click()
    page.wait_for_url(f"**/learn/{course.slug}/")
    pool = {item.external_id for item in course.items.filter(skills__external_id=goal)}
    shown = []
    for step in range(30):
        if step:
            page.keyboard.press("Enter")  # from the focused feedback to the next question
            page.locator("#question:not(.answered)").wait_for()
        item = _current_item(page)
        assert item.external_id in pool, (step, item.external_id)
        if len(set(shown)) < len(pool):
            assert item.external_id not in shown, f"answer {step + 1}: {item.external_id} again"
        shown.append(item.external_id)
        _answer(page, item, right=step % 7 != 6, focused=bool(step))  # a wrong one every seventh
    assert len(set(shown)) == len(pool) and console.errors == []
    page.context.close()


@pytest.mark.slow
def test_every_learner_and_dashboard_page_passes_axe_and_loads_without_404(
    browser, live_server, learner_user, staff_user
):
    if not AXE.exists():
        pytest.skip(f"{AXE} is absent: run `make axe` (npm) to check accessibility")
    course = demo_course_create()
    answers_simulate(course, learners=6, answers=12)
    failed: list[str] = []
    page, console = _page(browser, live_server)
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    _sign_in(page, "ada")
    problems: dict[str, list[str]] = {}
    for path in ("/", f"/learn/{course.slug}/", f"/learn/{course.slug}/mastery/", f"/learn/{course.slug}/summary/"):
        page.goto(path)
        problems[path] = _axe(page)
    page.goto(f"/learn/{course.slug}/")
    _answer(page, _current_item(page), right=False, focused=False)
    problems["learn, after an answer"] = _axe(page)
    page.keyboard.press("Enter")
    page.locator("#question:not(.answered)").wait_for()
    page.goto(f"/learn/{course.slug}/summary/")
    problems["summary, after answers"] = _axe(page)
    page.context.close()

    staff, staff_console = _page(browser, live_server)
    staff.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    _sign_in(staff, "grace")
    for tail in ("", f"{course.slug}/", f"{course.slug}/items/", f"{course.slug}/graph/", f"{course.slug}/fits/"):
        staff.goto(f"/dashboard/{tail}")
        problems[f"/dashboard/{tail}"] = _axe(staff)
    staff.goto("/accounts/login/")
    staff.context.close()
    assert {path: found for path, found in problems.items() if found} == {}
    assert failed == [] and console.errors == [] and staff_console.errors == []
