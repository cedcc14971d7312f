"""Rate limits per API key (or per staff user, or per address), read from settings on every request.

DRF's SimpleRateThrottle keeps every request's timestamp in one cached list that each request
reads, unpickles, appends to and writes back: at 200 requests/s on one key that is 12,000
timestamps moved per request, and concurrent server processes overwrite each other's lists.
Here each caller has one counter per window, raised atomically (``cache.incr``), and the limit
applies to a sliding estimate: the previous window's count, weighted by how much of it still
overlaps the last ``duration`` seconds, plus the current window's count.

A request raises the current window's counter first and reads the previous one, then decides;
a refused request takes its count back. On Redis that is one pipelined round trip per request
(INCR, EXPIRE, GET) instead of a read and a write: this runs before every API request.
"""

from __future__ import annotations

import math
import time
from typing import Any
from weakref import WeakKeyDictionary

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

from tutor.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """The key's own rate (set in the admin), else TUTOR_API_RATE, per key or staff user;
    TUTOR_API_ANON_RATE per address for everyone else. Every refusal says in Retry-After when
    a request will pass again."""

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
        key = request.auth if isinstance(request.auth, ApiKey) else None
        anonymous = key is None and not (request.user is not None and request.user.is_authenticated)
        if anonymous:
            rate = settings.TUTOR_API_ANON_RATE
        else:
            rate = (key.rate if key is not None else "") or settings.TUTOR_API_RATE  # set per key in the admin
        limit, duration = self.parse_rate(rate)
        base = self.get_cache_key(request, view)
        now = time.time()
        window, overlap = divmod(now / duration, 1.0)
        current, previous = f"{base}:{duration}:{int(window)}", f"{base}:{duration}:{int(window) - 1}"
        earlier, counted = _count(current, previous, timeout=2 * duration + 1)
        if earlier * (1.0 - overlap) + counted > limit:
            cache.decr(current)  # a refused request does not count against the caller
            self._wait = max(
                1.0, _free_after(limit=limit, earlier=earlier, stored=counted - 1, overlap=overlap) * duration
            )
            return False
        return True

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None


def _free_after(*, limit: int, earlier: int, stored: int, overlap: float) -> float:
    """How much of a window passes, from ``overlap`` into this one, until one more request fits the sliding
    estimate if no other request comes meanwhile: the honest Retry-After, in windows.

    In this window one more fits once ``earlier * (1 - t) + stored + 1 <= limit``; if this window's own
    ``stored`` requests already fill the limit, not before the next window, where they weigh
    ``stored * (1 - t)`` and one more fits once that is at most ``limit - 1``.
    """
    room = limit - stored - 1
    if room >= 0 and earlier:
        return max(0.0, 1.0 - room / earlier - overlap)
    fade = max(0.0, 1.0 - (limit - 1) / stored) if stored else 0.0
    return (1.0 - overlap) + fade


_writers: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()
"""Django's Redis cache client -> one redis-py client on its write pool, kept for the process."""


def _writer(backend: RedisCache) -> Any:
    """A redis-py client for writes, made once per cache client.

    Django's backend builds a new redis-py client object on every operation (its get_client), and
    building one costs about 0.08 ms (timeit), most of it filling the client's table of response
    callbacks: 8% of an API request under cProfile in a gunicorn worker. The client only wraps the connection
    pool, and writes always go to the first server's pool, so one client serves every request.
    """
    factory = backend._cache
    client = _writers.get(factory)
    if client is None:
        client = _writers[factory] = factory.get_client(write=True)
    return client


def _count(current: str, previous: str, *, timeout: int) -> tuple[int, int]:
    """Raise the counter ``current`` by one; return (counter ``previous``, counter ``current``)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # Django's Redis backend stores integers unpickled, so raw INCR and GET agree with cache.get/decr.
        # Its client is private API (backend._cache); the fallback below covers every other cache.
        keys = [backend.make_and_validate_key(key) for key in (current, previous)]
        with _writer(backend).pipeline(transaction=False) as pipe:
            counted, _, earlier = pipe.incr(keys[0]).expire(keys[0], timeout).get(keys[1]).execute()
        return int(earlier or 0), int(counted)
    backend.add(current, 0, timeout=timeout)
    try:
        counted = backend.incr(current)
    except ValueError:  # expired between add and incr
        backend.add(current, 1, timeout=timeout)
        counted = 1
    return int(backend.get(previous, 0)), counted
