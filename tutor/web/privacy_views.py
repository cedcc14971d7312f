"""The dashboard's Data tab: a course's exports, and erasing a learner or exporting what is held about them
(thin views over tutor.exports and tutor.privacy)."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import NotFound, ServiceError
from tutor.exports import EXPORTS, export_response
from tutor.models import Erasure
from tutor.privacy import learner_erase, learner_erase_preview, learner_export
from tutor.web.access import staff_required
from tutor.web.views import course_head, dashboard_course_get


@staff_required
@require_GET
def dashboard_data(request: HttpRequest, slug: str) -> HttpResponse:
    """Download links for the course's exports, the form that finds a learner to erase, recent erasures."""
    course = dashboard_course_get(slug)
    context = {
        **course_head(course, "data"),
        "exports": list(EXPORTS),
        "erasures": Erasure.objects.filter(course=course).select_related("erased_by")[:20],
        "erased": request.GET.get("erased"),
        "missing": request.GET.get("missing"),
    }
    return render(request, "web/dashboard/data.html", context)


@staff_required
@require_GET
def dashboard_export(request: HttpRequest, slug: str, export: str) -> StreamingHttpResponse:
    course = dashboard_course_get(slug)
    if export not in EXPORTS:
        raise Http404("no such export")
    try:
        return export_response(course=course, name=export)
    except NotFound as error:
        raise Http404(error.message) from None


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_erase(request: HttpRequest, slug: str) -> HttpResponse:
    """GET ?learner=: what the erasure would delete, and a form that asks for the learner's id again;
    POST: erase."""
    course = dashboard_course_get(slug)
    external_id = (request.POST if request.method == "POST" else request.GET).get("learner", "").strip()
    try:
        preview = learner_erase_preview(course=course, external_id=external_id)
    except NotFound:
        return redirect(f"{reverse('dashboard_data', args=[course.slug])}?missing=1")
    error = None
    if request.method == "POST":
        try:
            erasure = learner_erase(
                course=course,
                external_id=external_id,
                by=request.user,
                via=Erasure.DASHBOARD,
                confirm=request.POST.get("confirm", "").strip(),
            )
        except ServiceError as failure:
            error = (
                "Type the learner's id exactly to confirm."
                if failure.code == "confirmation_required"
                else failure.message
            )
        else:
            return redirect(f"{reverse('dashboard_data', args=[course.slug])}?erased={erasure.pk}")
    return render(
        request,
        "web/dashboard/erase.html",
        {**course_head(course, "data"), "preview": preview, "error": error},
        status=400 if error else 200,
    )


@staff_required
@require_GET
def dashboard_learner_export(request: HttpRequest, slug: str) -> HttpResponse:
    """Everything held about one learner (?learner=), as a JSON download."""
    course = dashboard_course_get(slug)
    try:
        document = learner_export(course=course, external_id=request.GET.get("learner", ""))
    except NotFound:
        raise Http404("no such learner") from None
    response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json")
    # The learner's id may hold anything (an email address): the file is named by the course only.
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-learner-export.json"'
    response["Cache-Control"] = "no-store"
    return response
