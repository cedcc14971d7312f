"""Thin Celery wrappers over tracing.services."""

from __future__ import annotations

from celery import shared_task


# fit_create passes each fit's own limits (they grow with the course); these are for a task sent without them.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def fit_run_task(fit_id: int) -> str:
    from tracing import services  # keeps torch and pyro out of the web process's import path

    return services.fit_run(fit_id=fit_id).status


@shared_task
def ping_task(value: int) -> dict:
    """Round trip through the broker: proves a worker is consuming (used by health checks and CI)."""
    import os
    import socket

    return {"value": value, "pid": os.getpid(), "host": socket.gethostname()}
