"""The client's address, found one way for everything that counts per address (sign-in lockouts,
the LTI login rate): django-axes's lookup, configured in settings by TUTOR_PROXY_COUNT."""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    return get_client_ip_address(request) or request.META.get("REMOTE_ADDR") or "unknown"
