"""``GET /health/``: is this process able to serve? For load balancers and uptime probes.

200 when the database answers (the broker down only degrades the service: answers
are still recorded and next items chosen, fits wait); 503 when the database does
not. Errors are named by class only, so the probe leaks nothing about the setup.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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

    with app.connection_for_write() as broker:
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


# Included from tutor/urls.py as ``path("health/", include("tutor.health"))``.
urlpatterns = [path("", health, name="health")]
