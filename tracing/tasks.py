"""Thin Celery wrappers over tracing.services, and the one place a fit is handed to a worker."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import chord, current_app, shared_task
from django.conf import settings
from django.utils import timezone as django_timezone

from core.errors import Unavailable
from tracing import services
from tracing.models import Fit


# fit_queue passes each fit's own limits (they grow with the course); these are for a task sent without them.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def fit_run_task(fit_id: int) -> str:
    return services.fit_run(fit_id=fit_id).status


# A shard's parts come back through the result backend to the chord's merge task; the merge writes the
# outcome on the Fit row. Neither blocks on another task, so one worker process runs them one by one.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def fit_shard_task(fit_id: int, shard: int, shards: int, up_to: int | None) -> dict[str, Any] | None:
    return services.fit_shard_run(fit_id=fit_id, shard=shard, shards=shards, up_to=up_to)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def fit_merge_task(results: list[dict[str, Any] | None], fit_id: int, up_to: int | None) -> str:
    return services.fit_shards_merge(fit_id=fit_id, results=results, up_to=up_to).status


def fit_queue_name(fit: Fit) -> str:
    """The queue a fit goes to: the GPU workers' for the kinds settings.TRACING_GPU_KINDS names, else the
    CPU fits' (README, Configuration)."""
    return settings.TRACING_GPU_FIT_QUEUE if fit.kind in settings.TRACING_GPU_KINDS else settings.TRACING_FIT_QUEUE


def fit_queue(*, fit: Fit) -> None:
    """Send a queued fit to the workers with its time limit; a broker that is down fails the fit and
    raises Unavailable (503) rather than leave it queued for ever."""
    try:
        limits = {"queue": fit_queue_name(fit), "soft_time_limit": fit.time_limit, "time_limit": fit.time_limit + 60}
        shards = services.fit_shard_count(fit)
        if shards > 1 and current_app.conf.result_backend:
            # A chord: one task per shard of skills, then the merge with their parts (README, Scale).
            # Without a result backend the parts have no way back: fit_run_task runs the shards in turn.
            up_to = services.fit_snapshot(course=fit.course)
            header = [fit_shard_task.signature((fit.pk, shard, shards, up_to), **limits) for shard in range(shards)]
            result = chord(header, fit_merge_task.signature((fit.pk, up_to), ignore_result=True, **limits)).apply_async(
                retry=False
            )
        else:
            # The Fit row carries the outcome: no result subscription, so a result store that is
            # down cannot wedge this process's Celery backend.
            result = fit_run_task.apply_async(args=[fit.pk], retry=False, ignore_result=True, **limits)
    except Exception as error:
        Fit.objects.filter(pk=fit.pk).update(
            status=Fit.FAILED, error=f"could not queue the fit: {error}", finished_at=django_timezone.now()
        )
        raise Unavailable(
            "the task queue is unavailable; the fit was not started, try again later", code="broker_unavailable"
        ) from error
    if result.id:
        Fit.objects.filter(pk=fit.pk, task_id="").update(task_id=result.id)


@shared_task
def ping_task(value: int) -> dict:
    """Round trip through the broker: proves a worker is consuming (used by health checks and CI)."""
    return {"value": value, "pid": os.getpid(), "host": socket.gethostname()}
