"""The dashboard's Data tab in Debian's headless chromium: a course export downloads, and a learner is
erased only after the confirmation page has their id typed again (set-up shared with test_browser)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.tutor.conftest import answers_simulate, demo_course_create
from tests.tutor.test_browser import AXE, _axe, _isolated, _page, _screenshot, _sign_in, browser  # noqa: F401
from tutor.models import Erasure, Interaction, Learner

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_download_an_export_and_erase_a_learner_after_confirming(browser, live_server, staff_user):  # noqa: F811
    course = demo_course_create()
    answers_simulate(course, learners=4, answers=10)
    answers = Interaction.objects.filter(course=course).count()
    page, console = _page(browser, live_server)
    failed: list[str] = []
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    _sign_in(page, "grace")
    page.goto(f"/dashboard/{course.slug}/")
    page.get_by_role("link", name="Data").click()
    page.wait_for_url(f"**/dashboard/{course.slug}/data/")

    with page.expect_download() as download_info:
        page.locator("#export-interactions").click()
    download = download_info.value
    assert download.suggested_filename == f"{course.slug}-interactions.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert len(rows) == answers and {row["learner"] for row in rows} == {f"sim-{n:02d}" for n in range(4)}

    page.get_by_label("Learner id").fill("sim-01")
    page.get_by_role("button", name="Review…").click()
    page.wait_for_url("**/erase/?learner=sim-01")
    assert "10 answers" in page.locator("#erase-preview").inner_text()
    _screenshot(page, "dashboard-erase")
    problems = _axe(page) if AXE.exists() else []
    page.get_by_label("Type the learner's id to confirm").fill("sim-0")
    page.get_by_role("button", name="Erase learner").click()
    assert "Type the learner's id exactly" in page.get_by_role("alert").inner_text()
    assert Learner.objects.filter(course=course, external_id="sim-01").exists()
    failed.clear()  # the refused confirmation answers 400 on purpose, which the console reports
    console.errors.clear()

    page.get_by_label("Type the learner's id to confirm").fill("sim-01")
    page.get_by_role("button", name="Erase learner").click()
    page.wait_for_url("**/data/?erased=*")
    assert "was erased" in page.locator("#erased-message").inner_text()
    erasure = Erasure.objects.get()
    assert erasure.counts["tutor.Interaction"] == 10 and erasure.actor == "user grace"
    assert page.locator("#erasures tbody tr").count() == 1
    assert not Learner.objects.filter(course=course, external_id="sim-01").exists()
    problems += _axe(page) if AXE.exists() else []
    _screenshot(page, "dashboard-data")
    page.context.close()
    assert problems == [] and failed == [] and console.errors == []
