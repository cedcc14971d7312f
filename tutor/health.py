"""``GET /health/``: is this process able to serve? For load balancers and uptime probes.

200 when the database answers (the broker down only degrades the service: answers
are still recorded and next items chosen, fits wait); 503 when the database does
not. Errors are named by class only, so the probe leaks nothing about the setup.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 1.0


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # any failure of a dependency is the answer, not a crash of the probe
        return {"ok": False, "error": type(error).__name__, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_check() -> None:
    from tutor.celery import app

    with app.connection_for_write(url=settings.CELERY_BROKER_URL) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)


def health_status() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): database and broker reachability with their latency in ms."""
    checks: dict[str, Any] = {"database": _timed(database_check)}
    eager = settings.CELERY_TASK_ALWAYS_EAGER or str(settings.CELERY_BROKER_URL).startswith("memory://")
    checks["broker"] = {"ok": True, "in_process": True} if eager else _timed(broker_check)
    if not checks["database"]["ok"]:
        overall, status = "down", 503
    elif not checks["broker"]["ok"]:
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    return status, {"status": overall, **checks}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    status, body = health_status()
    return JsonResponse(body, status=status)


class DatabaseUnavailableMiddleware:
    """A lost database answers 503 at once (JSON under /api/), not a bare 500 page.

    The connection is dropped so the next request reconnects (CONN_HEALTH_CHECKS
    then finds a fresh one): the app recovers when the database does, without a restart.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        connection.close_if_unusable_or_obsolete()
        message = "the database is unavailable; try again shortly"
        if request.path.startswith(("/api/", "/health/")):
            response: HttpResponse = JsonResponse({"code": "database_unavailable", "message": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response


# Included from tutor/urls.py as ``path("health/", include("tutor.health"))``.
urlpatterns = [path("", health, name="health")]
