"""The client's address, found one way for everything that counts per address (sign-in lockouts,
the LTI login rate): django-axes's lookup, configured in settings by TUTOR_PROXY_COUNT."""

from __future__ import annotations

import math

from axes.helpers import get_client_ip_address, get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    return get_client_ip_address(request) or request.META.get("REMOTE_ADDR") or "unknown"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes's lockout page (AXES_LOCKOUT_CALLABLE), with the Retry-After every 429 of this
    service carries: the whole cool-off, since the lock counts from the latest failure."""
    cool_off = get_cool_off(request)
    response = render(
        request,
        settings.AXES_LOCKOUT_TEMPLATE,
        {
            "failure_limit": get_failure_limit(request, credentials),
            "username": get_client_username(request, credentials) or "",
            "cooloff_timedelta": cool_off,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    if cool_off:
        response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    return response
