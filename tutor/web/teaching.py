"""The teacher's pages of the dashboard: a class's learners (the LMS roster, those not started too)
and one learner's page. Thin views over tutor.web.learners; access in tutor.web.access."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from tutor.lti.classes import TeachingScope
from tutor.lti.models import CourseClass
from tutor.lti.services import lti_roster_sync
from tutor.web import learners as reports
from tutor.web import svg
from tutor.web.access import class_chosen, teaching_required
from tutor.web.views import course_head


@teaching_required
@require_GET
def dashboard_learners(request: HttpRequest, scope: TeachingScope) -> HttpResponse:
    """Every learner of the chosen class (or of all the viewer's classes) by name, with flags."""
    course_class = class_chosen(request, scope)
    context = course_head(scope.course, "learners", scope, course_class)
    after = (request.GET.get("after_name", ""), request.GET["after"]) if "after" in request.GET else None
    rows = reports.roster_rows(scope=scope, course_class=course_class, after=after)
    following = reports.roster_next(rows)
    context.update(
        rows=rows,
        after=after,
        next_query=urlencode(
            {**({"class": course_class.pk} if course_class else {}), "after_name": following[0], "after": following[1]}
        )
        if following
        else "",
        flagged=sum(bool(row["flags"]) for row in rows),
        not_started=sum(row["learner"] is None or not row["answers"] for row in rows),
        shown_classes=[course_class] if course_class else scope.classes,
    )
    return render(request, "web/dashboard/learners.html", context)


@teaching_required
@require_GET
def dashboard_learner(request: HttpRequest, scope: TeachingScope, learner_id: int) -> HttpResponse:
    """One learner: flags, what comes next and why, mastery now and over time, traits, recent answers."""
    learner = scope.learners().filter(pk=learner_id).select_related("course").first()
    if learner is None:
        raise Http404("no such learner")
    report = reports.learner_report(scope=scope, learner=learner)
    context = course_head(scope.course, "learners", scope)
    names = report.skill_names
    context.update(
        report=report,
        reason=reports.choice_text(report.choice, names),
        next_skill=names.get(report.choice.skill or "", report.choice.skill),
        skills=[
            {
                "id": skill,
                "name": names.get(skill, skill),
                "percent": round(100 * float(report.history.mastery[-1, index])),
            }
            for index, skill in enumerate(report.history.skills)
        ]
        if len(report.history.at)
        else [],
        traits=[
            {"name": name.replace("_", " "), **(value if isinstance(value, dict) else {"mean": value})}
            for name, value in report.traits.items()
        ],
        mastery_svg=mark_safe(
            svg.mastery_line(
                reports.mean_series(report.history), label=f"Mean mastery after each answer of {learner.external_id}"
            )
        ),
    )
    return render(request, "web/dashboard/learner.html", context)


@teaching_required
@require_POST
def dashboard_roster_refresh(request: HttpRequest, scope: TeachingScope, class_id: int) -> HttpResponse:
    """Fetch the class's roster from the LMS now (a teacher's launch queues it; this is the retry)."""
    course_class = scope.class_get(class_id)
    if course_class is None or course_class.source != CourseClass.LTI:
        raise Http404("no such LMS class")
    try:
        outcome = lti_roster_sync(course_class=course_class)
    except Exception as error:  # the LMS's answer or the network: shown, and kept on the class
        messages.error(request, f"The LMS did not send the roster: {error}")
    else:
        messages.success(request, f"Roster updated: {outcome.learners} learners, {outcome.members} people in all.")
    return redirect(f"{reverse('dashboard_learners', args=[scope.course.slug])}?class={course_class.pk}")
