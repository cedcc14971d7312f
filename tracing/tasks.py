"""Thin Celery wrappers over tracing.services, and the one place a fit is handed to a worker."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

from celery import chord, current_app, shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone as django_timezone

from core.errors import Conflict, Unavailable
from curriculum.models import Course
from tracing import services
from tracing.models import Fit

logger = logging.getLogger(__name__)
TRAITS_PENDING_S = 120
"""How long a learner's pending-refresh mark lives: a lost task delays their next refresh at most this long."""


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


def _traits_key(course_pk: int, learner_pk: int) -> str:
    return f"tracing:traits-pending:{course_pk}:{learner_pk}"


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def traits_refresh_task(course_id: int, learner_ids: list[int]) -> int:
    # The marks go first: an answer committed from here on queues another refresh, and one committed
    # before is in the histories this refresh reads.
    try:
        cache.delete_many([_traits_key(course_id, pk) for pk in learner_ids])
    except Exception:  # a cache that is down: the marks expire by themselves
        logger.warning("could not clear the pending trait refresh marks", exc_info=True)
    return services.traits_refresh(course_pk=course_id, learner_pks=learner_ids)


def traits_queue(*, course_pk: int, learner_pks: Iterable[int]) -> None:
    """Re-infer these learners' traits soon (call once their answers have committed), debounced: a
    learner with a refresh already pending is not queued again, and a refresh waits
    TRACING_TRAITS_DELAY seconds, so a burst of answers is one task. Without a broker, this process's
    background thread does it (``services.traits_refresh_in_process``). Never raises: the answers are
    stored, and a refresh missed now comes with the learner's next answer or the next absorb."""
    try:
        if services.fits_in_process():
            services.traits_refresh_in_process(course_pk=course_pk, learner_pks=learner_pks)
            return
        try:
            due = [pk for pk in learner_pks if cache.add(_traits_key(course_pk, pk), 1, timeout=TRAITS_PENDING_S)]
        except Exception:  # no shared cache: refresh every time rather than never
            due = list(learner_pks)
        if due:
            traits_refresh_task.apply_async(
                args=[course_pk, due], countdown=settings.TRACING_TRAITS_DELAY, retry=False, ignore_result=True
            )
    except Exception:
        logger.exception("could not queue the trait refresh of course %s", course_pk)


@shared_task(soft_time_limit=300, time_limit=330)
def fits_absorb_task() -> list[int]:
    """celery beat (settings CELERY_BEAT_SCHEDULE): an absorb of every course whose active model can absorb."""
    return [fit.pk for fit in fits_absorb()]


def fits_absorb(*, courses: Iterable[Course] | None = None, inline: bool = False) -> list[Fit]:
    """Queue an absorb (``services.fit_absorb``) for each course (default: every course with an active fit)
    that has new answers since its active fit; a course whose fits are at their cap is left for the next
    round. Returns the absorbs queued (``inline``, without a broker: run before this returns)."""
    queued = []
    if courses is None:
        courses = Course.objects.filter(fits__active=True).distinct().order_by("pk")
    for course in courses:
        try:
            with transaction.atomic():
                fit = services.fit_absorb(course=course, inline=inline)
                if fit is not None and not services.fits_in_process():
                    transaction.on_commit(lambda fit=fit: fit_queue(fit=fit), robust=False)
        except (Conflict, Unavailable) as error:
            logger.info("course %s: no absorb this round (%s)", course.pk, error)
            continue
        if fit is not None:
            fit.refresh_from_db()
            queued.append(fit)
    return queued
