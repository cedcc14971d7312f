"""Rate limits per API key (or per staff user, or per address), read from settings on every request.

DRF's SimpleRateThrottle keeps every request's timestamp in one cached list that each request
reads, unpickles, appends to and writes back: at 200 requests/s on one key that is 12,000
timestamps moved per request, and concurrent server processes overwrite each other's lists.
Here each caller has one counter per window, raised atomically (``cache.incr``), and the limit
applies to a sliding estimate: the previous window's count, weighted by how much of it still
overlaps the last ``duration`` seconds, plus the current window's count.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from tutor.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """TUTOR_API_RATE per key or staff user; TUTOR_API_ANON_RATE per address for everyone else."""

    scope = "api"

    def __init__(self) -> None:  # the rate depends on the caller: chosen in allow_request
        self._wait: float | None = None

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
        limit, duration = self.parse_rate(settings.TUTOR_API_ANON_RATE if anonymous else settings.TUTOR_API_RATE)
        base = self.get_cache_key(request, view)
        now = time.time()
        window, overlap = divmod(now / duration, 1.0)
        current, previous = f"{base}:{duration}:{int(window)}", f"{base}:{duration}:{int(window) - 1}"
        counts = cache.get_many([current, previous])
        carried = counts.get(previous, 0) * (1.0 - overlap)
        if carried + counts.get(current, 0) + 1 > limit:
            # Free again once the previous window's weight has fallen enough, or when this window ends.
            room = limit - counts.get(current, 0) - 1
            if room >= 0 and counts.get(previous, 0):
                free_at = 1.0 - room / counts[previous]
                self._wait = max(1.0, (free_at - overlap) * duration)
            else:
                self._wait = max(1.0, (1.0 - overlap) * duration)
            return False
        try:
            cache.incr(current)
        except ValueError:  # the first request of this window
            if not cache.add(current, 1, timeout=2 * duration + 1):
                cache.incr(current)  # another process added it in between
        return True

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None
