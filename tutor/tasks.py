"""Thin Celery wrappers over tutor.actions (the fits' and traits' tasks live in tracing.tasks, the LMS's in
tutor.lti.tasks)."""

from __future__ import annotations

from celery import shared_task

from tutor.actions import mastery_pending_sweep


@shared_task(soft_time_limit=3600, time_limit=3660)
def mastery_pending_task() -> dict[str, int]:
    """celery beat (settings CELERY_BEAT_SCHEDULE): finish the mastery refresh of learners a file import
    left marked (``tutor.actions.mastery_pending_sweep``)."""
    return mastery_pending_sweep()
