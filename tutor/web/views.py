"""Learner pages and the staff dashboard: thin views over tutor.web.practice and tutor.web.dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import NotFound, ServiceError
from curriculum.models import Course
from tracing.estimators import ESTIMATORS
from tracing.models import Fit
from tracing.practice import LearnerView, learner_view
from tracing.services import learner_traits_view
from tutor.actions import fit_start
from tutor.activity import activity_mastery_pending
from tutor.enrolments import course_for_user, courses_for_user, enrolment_learner
from tutor.lti.classes import TeachingScope, teaching_courses, teaching_scope
from tutor.lti.models import CourseClass, PracticeActivity
from tutor.lti.views import ACTIVITY_SESSION_KEY
from tutor.models import Learner
from tutor.web import dashboard, practice, svg
from tutor.web.access import class_chosen, lti_frameable, staff_required, teaching_required
from tutor.web.forms import AnswerForm, FitStartForm, GoalForm

STATUS_FILL = {practice.MASTERED: "#16a34a", practice.IN_PROGRESS: "#dbeafe", practice.LOCKED: "#f1f5f9"}


def dashboard_course_get(slug: str) -> Course:
    """The course of a dashboard URL, or 404 (each page checks who may see it)."""
    return get_object_or_404(Course, slug=slug)


def _learner_page(request: HttpRequest, slug: str) -> tuple[Course, Learner]:
    """The course and the user's learner in it. A course the user may not practise is a 404 like one
    that does not exist, for staff too (the dashboard is theirs; visiting would make a learner here)."""
    try:
        course = course_for_user(user=request.user, slug=slug)
        return course, enrolment_learner(course=course, user=request.user)
    except NotFound:
        raise Http404("no such course") from None


def _wants_fragment(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The courses the user may practise (enrolled or open), marking those they have started."""
    courses = list(courses_for_user(user=request.user).order_by("name"))
    started = set(Learner.objects.filter(user=request.user).values_list("course_id", flat=True))
    return render(request, "web/home.html", {"courses": courses, "started": started})


def _mastery_context(
    course: Course, learner: Learner, *, compact: bool = True, view: LearnerView | None = None
) -> dict[str, Any]:
    progress = practice.learner_progress(course=course, learner=learner, view=view)
    return {"progress": progress, "threshold_percent": round(progress.threshold * 100), "compact": compact}


def _goal(request: HttpRequest, course: Course, learner: Learner) -> str | None:
    """The learner's chosen goal skill (kept with the learner), if it is still a skill of the course."""
    goal = learner.goal or None
    return goal if goal and course.skills.filter(external_id=goal).exists() else None


def _activity_goals(request: HttpRequest, course: Course) -> list[str] | None:
    """The goal skills of the LMS activity this session was launched into (Deep Linking), if any."""
    activity_pk = request.session.get(ACTIVITY_SESSION_KEY.format(course=course.slug))
    activity = PracticeActivity.objects.filter(pk=activity_pk, course=course).first() if activity_pk else None
    if activity is None:
        return None
    known = set(course.skills.filter(external_id__in=activity.goals).values_list("external_id", flat=True))
    return [goal for goal in activity.goals if goal in known] or None


def _practice_context(request: HttpRequest, course: Course, learner: Learner, **extra: Any) -> dict[str, Any]:
    goal = _goal(request, course, learner)
    activity_goals = _activity_goals(request, course)
    # One read of the learner's state serves the question and the mastery panel.
    view = learner_view(course=course, learner=learner)
    question = extra.pop("question", None) or practice.question_next(
        course=course, learner=learner, goal=goal, goals=activity_goals, view=view
    )
    goal_form = GoalForm(initial={"goal": goal or ""}, skills=practice.goal_choices(course=course))
    return {
        "course": course,
        "learner": learner,
        "question": question,
        "goal_form": goal_form,
        "goal": goal,
        "activity_goals": activity_goals,
        "form": extra.pop("form", None) or AnswerForm(initial={"token": question.token}),
        **_mastery_context(course, learner, view=view),
        **extra,
    }


@lti_frameable
@login_required
@require_GET
def learn(request: HttpRequest, slug: str) -> HttpResponse:
    """The practice page: the item the policy chose and why, an answer form, and the skills' mastery."""
    course, learner = _learner_page(request, slug)
    return render(request, "web/learn.html", _practice_context(request, course, learner))


@lti_frameable
@login_required
@require_GET
def learn_question(request: HttpRequest, slug: str) -> HttpResponse:
    """The next question alone, for the page to swap in without a reload."""
    course, learner = _learner_page(request, slug)
    question = practice.question_next(
        course=course, learner=learner, goal=_goal(request, course, learner), goals=_activity_goals(request, course)
    )
    return render(
        request,
        "web/_question.html",
        {"course": course, "question": question, "form": AnswerForm(initial={"token": question.token})},
    )


@lti_frameable
@login_required
@require_POST
def learn_answer(request: HttpRequest, slug: str) -> HttpResponse:
    """Check and store one answer. A fetch gets JSON with the feedback and mastery fragments; a plain
    form post gets the whole page with the feedback and the next question."""
    course, learner = _learner_page(request, slug)
    form = AnswerForm(request.POST)
    fragment = _wants_fragment(request)
    if not form.is_valid():
        if fragment:
            return JsonResponse({"error": " ".join(m for errors in form.errors.values() for m in errors)}, status=400)
        return render(request, "web/learn.html", _practice_context(request, course, learner), status=400)
    try:
        feedback = practice.answer_submit(
            course=course, learner=learner, token=form.cleaned_data["token"], response=form.cleaned_data["response"]
        )
    except practice.BadToken as error:
        if fragment:
            return JsonResponse({"error": str(error), "stale": True}, status=409)
        return render(
            request, "web/learn.html", _practice_context(request, course, learner, notice=str(error)), status=409
        )
    feedback_context = {"feedback": feedback, "feedback_text": practice.FEEDBACK_TEXT.get(feedback.reason, "")}
    if not fragment:
        # The whole page reads the learner's state once, for the next question and the mastery panel.
        return render(request, "web/learn.html", _practice_context(request, course, learner, **feedback_context))
    mastery = _mastery_context(course, learner)
    context = {**feedback_context, **mastery}
    return JsonResponse(
        {
            "correct": feedback.correct,
            "duplicate": feedback.duplicate,
            "feedback": render_to_string("web/_feedback.html", {"course": course, **context}, request=request),
            "mastery": render_to_string("web/_mastery_bars.html", context, request=request),
            "mastered": mastery["progress"].mastered,
        }
    )


@lti_frameable
@login_required
@require_GET
def learn_mastery(request: HttpRequest, slug: str) -> HttpResponse:
    """The learner's map: skills as the prerequisite graph coloured by status, and the bars."""
    course, learner = _learner_page(request, slug)
    view = learner_view(course=course, learner=learner)
    context = {"course": course, "learner": learner, **_mastery_context(course, learner, compact=False, view=view)}
    context["traits"] = learner_traits_view(learner=learner, model=view.model, state=view.state)
    context["mastery_pending"] = activity_mastery_pending(learner_pk=learner.pk)
    progress = context["progress"]
    graph = progress.graph
    names = {skill.id: skill.name for skill in progress.skills}
    context["map_svg"] = mark_safe(
        svg.prerequisite_graph(
            [skill.id for skill in progress.skills],
            names,
            [svg.GraphEdge(edge.source, edge.target, "authored") for edge in graph.edges.values()],
            list(graph.edges),
            label=f"Your skills in {course.name}",
            legend=False,
            fills={skill.id: STATUS_FILL[skill.status] for skill in progress.skills},
            captions={skill.id: f"{skill.percent}% · {skill.status.replace('-', ' ')}" for skill in progress.skills},
        )
    )
    return render(request, "web/mastery.html", context)


@lti_frameable
@login_required
@require_POST
def learn_goal(request: HttpRequest, slug: str) -> HttpResponse:
    """Set (or clear) the learner's goal skill; the policy then works towards it."""
    course, learner = _learner_page(request, slug)
    form = GoalForm(request.POST, skills=practice.goal_choices(course=course))
    if not form.is_valid():
        return render(
            request,
            "web/learn.html",
            _practice_context(request, course, learner, notice="please pick one of the listed skills as your goal"),
            status=400,
        )
    learner.goal = form.cleaned_data["goal"] or ""
    learner.save(update_fields=["goal"])
    return redirect("learn", slug=course.slug)


@lti_frameable
@login_required
@require_GET
def learn_summary(request: HttpRequest, slug: str) -> HttpResponse:
    """Shown when the learner stops: this sitting's answers, what moved, what is next and the reviews due."""
    course, learner = _learner_page(request, slug)
    return render(
        request,
        "web/summary.html",
        {
            "course": course,
            "learner": learner,
            "summary": practice.sitting_summary(
                course=course,
                learner=learner,
                goal=_goal(request, course, learner),
                goals=_activity_goals(request, course),
            ),
        },
    )


@login_required
@require_GET
def dashboard_index(request: HttpRequest) -> HttpResponse:
    """Site staff: every course. A teacher: the courses of their classes, counted over their learners."""
    if request.user.is_staff:
        return render(request, "web/dashboard/index.html", {"rows": dashboard.courses_overview(), "staff": True})
    rows = []
    for course in teaching_courses(user=request.user).order_by("slug"):
        scope = teaching_scope(user=request.user, course=course)
        if scope is None:
            continue
        counts = dashboard.course_counts(course=course, learners=scope.learners())
        rows.append(
            {
                "course": course,
                "learners": counts["learners"],
                "interactions": counts["interactions"],
                "skills": counts["skills"],
                "items": counts["items"],
                "active_fit": counts["active_fit"],
                "classes": scope.classes,
            }
        )
    if not rows:
        raise PermissionDenied("the dashboard is for staff and teachers")
    return render(request, "web/dashboard/index.html", {"rows": rows, "staff": False})


def course_head(
    course: Course, current: str, scope: TeachingScope | None = None, course_class: CourseClass | None = None
) -> dict[str, Any]:
    """The course head: counts over what the viewer sees (a class, a teacher's classes, or all), the
    class filter, and the tabs (Items and Fits are site staff's)."""
    staff = scope is None or scope.everything
    learners = None if scope is None or (scope.everything and course_class is None) else scope.learners(course_class)
    return {
        "course": course,
        "tab": current,
        "counts": dashboard.course_counts(course=course, learners=learners),
        "staff": staff,
        "classes": scope.classes if scope is not None else [],
        "course_class": course_class,
    }


@teaching_required
@require_GET
def dashboard_course(request: HttpRequest, scope: TeachingScope) -> HttpResponse:
    """Overview: activity over time, the mastery heatmap and learning curves per skill, over the chosen
    class's learners (a teacher: their classes' learners; staff: everyone, unless a class is chosen)."""
    course, course_class = scope.course, class_chosen(request, scope)
    learners = None if scope.everything and course_class is None else scope.learners(course_class)
    activity = dashboard.activity(course=course, learners=learners)
    matrix = dashboard.mastery_matrix(course=course, learners=learners)
    skills, curves = dashboard.course_learning_curves(course=course, learners=learners)
    context = course_head(course, "overview", scope, course_class)
    context["activity"] = activity
    context["activity_svg"] = mark_safe(
        svg.bar_chart(activity.labels, activity.totals, activity.correct, label=f"Answers per {activity.bucket}")
    )
    context["matrix"] = matrix
    context["heatmap_svg"] = (
        mark_safe(
            svg.heatmap(
                [name[:24] for name in matrix.names],
                [skill.external_id for skill in matrix.skills],
                matrix.values,
                column_titles=[skill.name or skill.external_id for skill in matrix.skills],
                label="Mastery of the most active learners by skill",
            )
        )
        if matrix.learners and matrix.skills
        else ""
    )
    context["curves"] = [
        {
            "skill": skill,
            "points": curves.get(skill.pk, []),
            "answers": sum(count for _, _, count in curves.get(skill.pk, [])),
            "svg": mark_safe(
                svg.curve(curves.get(skill.pk, []), label=f"Error rate by attempt: {skill.name or skill.external_id}")
            ),
        }
        for skill in skills
    ]
    return render(request, "web/dashboard/course.html", context)


@staff_required
@require_GET
def dashboard_items(request: HttpRequest, slug: str) -> HttpResponse:
    """Items with their fitted parameters and flags, and the per-skill parameters."""
    course = dashboard_course_get(slug)
    context = course_head(course, "items")
    fit = context["counts"]["active_fit"]
    context.update(dashboard.item_table(course=course, fit=fit))
    context["fit"] = fit
    if request.GET.get("flagged"):
        context["items"] = [row for row in context["items"] if row["flags"]]
        context["only_flagged"] = True
    return render(request, "web/dashboard/items.html", context)


@teaching_required
@require_GET
def dashboard_graph(request: HttpRequest, scope: TeachingScope) -> HttpResponse:
    """The prerequisite graph: authored and learned edges told apart, in layers by topological order."""
    course = scope.course
    data = dashboard.graph_data(course=course)
    context = course_head(course, "graph", scope)
    context["graph"] = data
    context["graph_svg"] = (
        mark_safe(
            svg.prerequisite_graph(
                data.skills,
                data.names,
                [svg.GraphEdge(*edge) for edge in data.edges],
                data.layout_edges,
                label=f"Prerequisite graph of {course.name}",
            )
        )
        if data.skills
        else ""
    )
    context["edge_counts"] = {
        origin: sum(edge[2] == origin for edge in data.edges) for origin in ("authored", "learned", "both")
    }
    context["learned_edges"] = [
        {
            "source": data.names.get(source, source),
            "target": data.names.get(target, target),
            "weight": weight,
            "authored": origin == "both",
        }
        for source, target, origin, weight in sorted(data.edges, key=lambda edge: -edge[3])
        if origin != "authored"
    ]
    return render(request, "web/dashboard/graph.html", context)


def _fits_context(course: Course) -> dict[str, Any]:
    rows = dashboard.fits_table(course=course)
    return {
        "course": course,
        "fits": rows,
        "metric_columns": dashboard.METRIC_COLUMNS,
        "running": [row["fit"].pk for row in rows if row["fit"].status in (Fit.QUEUED, Fit.RUNNING)],
    }


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_fits(request: HttpRequest, slug: str) -> HttpResponse:
    """The course's fits with their metrics side by side, and the form that starts one."""
    course = dashboard_course_get(slug)
    form = FitStartForm(request.POST or None)
    error, failed_status = None, 400
    if request.method == "POST" and form.is_valid():
        try:
            # Queued for a worker, or without a broker for this process's background thread: either way
            # the page answers at once and polls the fit's progress.
            fit = fit_start(course=course, kind=form.cleaned_data["model"], params=form.cleaned_data["params"])
        except ServiceError as failure:
            error, failed_status = failure.message, failure.status
        else:
            return redirect(f"{reverse('dashboard_fits', args=[course.slug])}?started={fit.pk}")
    context = {
        **course_head(course, "fits"),
        **_fits_context(course),
        "form": form,
        "error": error,
        "started": request.GET.get("started"),
        "kinds": sorted(ESTIMATORS),
    }
    return render(
        request, "web/dashboard/fits.html", context, status=failed_status if request.method == "POST" else 200
    )


@staff_required
@require_GET
def dashboard_fits_table(request: HttpRequest, slug: str) -> HttpResponse:
    return render(request, "web/dashboard/_fits_table.html", _fits_context(dashboard_course_get(slug)))


@staff_required
@require_GET
def dashboard_fit_status(request: HttpRequest, slug: str, fit_id: int) -> JsonResponse:
    fit = Fit.objects.filter(course__slug=slug, pk=fit_id).first()
    if fit is None:
        raise Http404("no such fit")
    return JsonResponse(dashboard.fit_progress(fit))
