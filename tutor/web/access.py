"""Who may open which dashboard page: site staff everything; a teacher (a teaching grant on a class,
made by an instructor's LTI launch) the pages of that class's course, showing their classes' learners."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from curriculum.models import Course
from tutor.lti.classes import TeachingScope, teaching_scope
from tutor.lti.models import CourseClass


def lti_frameable(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Learner pages may sit in the LMS's iframe when TUTOR_LTI_IFRAME is on; framing stays denied otherwise."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if settings.TUTOR_LTI_IFRAME:
            response.xframe_options_exempt = True
            response["Content-Security-Policy"] = "frame-ancestors 'self' " + " ".join(
                settings.TUTOR_LTI_FRAME_ANCESTORS
            )
        return response

    return wrapped


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; signed-in users who are not staff get 403 (teachers too:
    pages that read every learner of a course, or change it, are the site staff's)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("the dashboard is for staff")
        return view(request, *args, **kwargs)

    return wrapped


def teaching_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A course's dashboard page for site staff and for the course's teachers: the view gets the
    ``TeachingScope`` instead of the slug. Anyone else gets 403 whether or not the course exists
    (staff get 404 for a course that does not)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        course = Course.objects.filter(slug=slug).first()
        scope = teaching_scope(user=request.user, course=course) if course is not None else None
        if scope is None:
            if request.user.is_staff:
                raise Http404("no such course")
            raise PermissionDenied("this dashboard is for the course's teachers and staff")
        return view(request, scope, *args, **kwargs)

    # A teacher's launch lands here, inside the LMS's iframe where the learner pages may sit too.
    return lti_frameable(wrapped)


def class_chosen(request: HttpRequest, scope: TeachingScope) -> CourseClass | None:
    """The class named by ``?class=``, which must be one the scope may see (404 otherwise); None: all."""
    wanted = request.GET.get("class") or None
    if wanted is None:
        return None
    course_class = scope.class_get(wanted)
    if course_class is None:
        raise Http404("no such class")
    return course_class
