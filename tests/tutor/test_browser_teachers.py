"""The teacher's pages in Debian's headless chromium (set-up of tests/tutor/test_browser.py): a teacher
who is not staff filters the dashboard by class and opens a learner's page."""

from __future__ import annotations

import pytest

from tests.tutor.conftest import answers_simulate, demo_course_create
from tests.tutor.test_browser import AXE, _axe, _page, _screenshot, _sign_in, browser  # noqa: F401 (fixture)
from tutor.lti.models import ClassMember, CourseClass, TeachingGrant
from tutor.models import Learner

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _isolated(isolated_models):
    yield


def test_a_teacher_filters_by_class_and_opens_a_learner(browser, live_server, django_user_model, fast_passwords):
    from tests.tutor.conftest import PASSWORD

    course = demo_course_create()
    answers_simulate(course, learners=6, answers=12)
    first = CourseClass.objects.create(course=course, name="Class A", source=CourseClass.STAFF)
    second = CourseClass.objects.create(course=course, name="Class B", source=CourseClass.STAFF)
    for number in range(6):
        learner = Learner.objects.get(course=course, external_id=f"sim-{number:02d}")
        ClassMember.objects.create(
            course_class=first if number < 3 else second,
            learner=learner,
            external_id=learner.external_id,
            name=f"Pupil {number}",
        )
    ClassMember.objects.create(course_class=first, external_id="roster-only", name="Nora Notyet")
    teacher = django_user_model.objects.create_user(username="tess", password=PASSWORD)
    for course_class in (first, second):
        TeachingGrant.objects.create(course_class=course_class, user=teacher)

    page, console = _page(browser, live_server)
    _sign_in(page, "tess")
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name=course.name).click()
    page.get_by_role("link", name="Learners", exact=True).click()
    page.wait_for_url(f"**/dashboard/{course.slug}/learners/")
    assert page.locator("table.roster tbody tr").count() == 7

    page.get_by_label("Class", exact=True).select_option(label="Class A")  # the filter submits itself
    page.wait_for_url(f"**/learners/?class={first.pk}")
    names = page.locator("table.roster tbody th").all_inner_texts()
    assert sorted(names) == ["Nora Notyet", "Pupil 0", "Pupil 1", "Pupil 2"]
    assert "not started" in page.locator("table.roster tbody tr", has_text="Nora Notyet").inner_text()
    assert page.get_by_role("link", name="Nora Notyet").count() == 0  # no page before the first answer
    _screenshot(page, "teacher-class", readme=True)
    problems = {"learners": _axe(page)} if AXE.exists() else {}

    page.get_by_role("link", name="Overview").click()
    page.wait_for_url(f"**/dashboard/{course.slug}/?class={first.pk}")
    assert page.locator(".stats dd").first.inner_text() == "3"
    page.get_by_label("Class", exact=True).select_option(label="Class B")
    page.wait_for_url(f"**/dashboard/{course.slug}/?class={second.pk}")
    assert page.locator(".stats dd").first.inner_text() == "3"

    page.get_by_role("link", name="Learners", exact=True).click()
    page.get_by_role("link", name="Pupil 4").click()
    page.wait_for_url(f"**/learners/{Learner.objects.get(external_id='sim-04').pk}/")
    assert page.locator("h2#learner-title").inner_text() == "Pupil 4"
    assert page.locator(".next-reason").inner_text()
    assert page.locator("svg.mastery-line path").count() == 1
    assert page.locator("table.history tbody tr").count() == 12
    _screenshot(page, "teacher-learner", readme=True)
    if AXE.exists():
        problems["learner"] = _axe(page)
    assert {name: found for name, found in problems.items() if found} == {}
    assert page.goto(f"/dashboard/{course.slug}/items/").status == 403
    assert console.errors == [] or all("403" in error for error in console.errors)
    page.context.close()
