"""Rate limits per API key (or per staff user, or per address), read from settings on every request."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from tutor.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """TUTOR_API_RATE per key or staff user; TUTOR_API_ANON_RATE per address for everyone else."""

    scope = "api"

    def __init__(self) -> None:  # the rate depends on the caller: chosen in allow_request
        pass

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"  # the prefix, not the pk: ids are reused after a rollback
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"address:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        anonymous = not isinstance(request.auth, ApiKey) and not (
            request.user is not None and request.user.is_authenticated)
        self.rate = settings.TUTOR_API_ANON_RATE if anonymous else settings.TUTOR_API_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
