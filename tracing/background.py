"""Fits in the background of a web process that has no broker (the embedded default).

Without a broker Celery would run a fit inside the request that asked for it, which holds
the request for minutes. Instead the web process owns one daemon thread that runs queued
fits one at a time, so a request answers 202 at once as with a worker. The thread takes
the next fit round-robin over courses: the course whose last fit started longest ago
(never: first) goes next, so one course's queue cannot starve another's.

A daemon thread dies with its process (runserver's autoreloader restarts the process on
every code change): the fits it held stay queued or running under its owner mark, and the
next process re-queues them when its thread starts (``on_start``; see
``tracing.services.fits_resume``).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    fit_id: int
    course_id: int
    order: int


def next_pending(pending: list[Pending], last_start: dict[int, int]) -> Pending:
    """The fit to run next: from the course whose last start is oldest (-1: never started here),
    then the earliest submitted. ``last_start`` maps course -> the start counter of its last fit."""
    return min(pending, key=lambda job: (last_start.get(job.course_id, -1), job.order))


class FitRunner:
    """One daemon thread running ``run(fit_id)`` for submitted fits, fairly across courses."""

    def __init__(self, run: Callable[[int], object], on_start: Callable[[FitRunner], object] | None = None) -> None:
        self._run, self._on_start = run, on_start
        self._condition = threading.Condition()
        self._pending: list[Pending] = []
        self._last_start: dict[int, int] = {}
        self._order = itertools.count()
        self._starts = itertools.count()
        self._thread: threading.Thread | None = None
        self._busy = False

    def start(self) -> None:
        """Start the thread unless it runs (again after a fork: threads do not survive one)."""
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="fit-runner", daemon=True)
                self._thread.start()

    def submit(self, fit_id: int, course_id: int) -> None:
        with self._condition:
            if any(job.fit_id == fit_id for job in self._pending):
                return
            self._pending.append(Pending(fit_id, course_id, next(self._order)))
            self._condition.notify_all()
        self.start()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending or running (within ``timeout`` seconds); for tests and shutdown."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _take(self) -> Pending:
        with self._condition:
            self._condition.wait_for(lambda: bool(self._pending))
            job = next_pending(self._pending, self._last_start)
            self._pending.remove(job)
            self._last_start[job.course_id] = next(self._starts)
            self._busy = True
            return job

    def _loop(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start(self)
            except Exception:  # a database not migrated yet, say: the runner still serves new fits
                logger.exception("could not resume the fits a previous process left")
            finally:
                connections.close_all()
        while True:
            job = self._take()
            try:
                close_old_connections()
                self._run(job.fit_id)
            except Exception:  # fit_run records its own failures; this is a bug, which must not end the thread
                logger.exception("background fit %s failed outside fit_run", job.fit_id)
            finally:
                # This thread's connection would otherwise stay open (and on SQLite, hold the file) between fits.
                connections.close_all()
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()


class Coalescer:
    """One daemon thread running ``run(key, items)`` for submitted items, coalesced per key: items submitted
    for a key while its run waits join that run, so a burst is one run (the embedded default's trait
    refreshes: a key is a course, the items its learners)."""

    def __init__(self, run: Callable[[int, set[int]], object], name: str) -> None:
        self._run, self._name = run, name
        self._condition = threading.Condition()
        self._pending: dict[int, set[int]] = {}
        self._thread: threading.Thread | None = None
        self._busy = False

    def submit(self, key: int, items: set[int]) -> None:
        with self._condition:
            self._pending.setdefault(key, set()).update(items)
            self._condition.notify_all()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending or running (within ``timeout`` seconds); for tests and shutdown."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._pending))
                key = next(iter(self._pending))
                items = self._pending.pop(key)
                self._busy = True
            try:
                close_old_connections()
                self._run(key, items)
            except Exception:  # the next burst retries these learners; a failure must not end the thread
                logger.exception("%s: run for %s failed", self._name, key)
            finally:
                connections.close_all()
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
