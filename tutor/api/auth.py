"""Who may call the API: a course's API key, a global admin key, or a staff member's session."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from core.errors import NotFound
from curriculum.models import Course
from curriculum.services import course_get
from tutor.keys import api_key_check
from tutor.models import ApiKey


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` (``Bearer`` is accepted too). Sets ``request.auth`` to the ApiKey."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise AuthenticationFailed("the Authorization header must be 'Token <key>'", code="invalid_key")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("the API key must be ASCII", code="invalid_key") from None
        key = api_key_check(raw)
        if key is None:
            raise AuthenticationFailed("unknown or revoked API key", code="invalid_key")
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return 'Token realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tutor.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`. A key is scoped to one course (a key for course A gets 404 for "
            "anything of course B) or, for a global admin key, to all courses. Create one "
            "with `manage.py apikey_create --course SLUG --name NAME` or in the admin.",
        }


def _is_staff(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


class CourseClient(BasePermission):
    """An API key, or a signed-in staff member."""

    message = "an API key (Authorization: Token <key>) or a staff session is required"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey) or _is_staff(request)


class GlobalClient(BasePermission):
    """A global admin key (not scoped to a course), or a signed-in staff member."""

    message = "only a global admin key or a staff member may do this; a course key reaches its own course only"

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.course_id is None
        return _is_staff(request)


def course_for_request(request, slug: str) -> Course:
    """The course ``slug`` if the caller may see it; NotFound otherwise, so other courses stay invisible."""
    key = request.auth if isinstance(request.auth, ApiKey) else None
    if key is not None and key.course_id is not None:
        if key.course.slug != slug:
            raise NotFound(f"course {slug!r} not found", field="course")
        return key.course
    return course_get(slug=slug)


def courses_for_request(request):
    key = request.auth if isinstance(request.auth, ApiKey) else None
    if key is not None and key.course_id is not None:
        return Course.objects.filter(pk=key.course_id)
    return Course.objects.all()
