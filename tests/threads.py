"""Requests at once: what eight requests do together is tested with threads on PostgreSQL (SQLite in a
test shares one connection, so its threads cannot race)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection, connections

THREADS = 8
Result = TypeVar("Result")


@pytest.fixture
def postgresql() -> None:
    """Skip (or, with REQUIRE_SERVICES=1 as in CI, fail) unless the tests run on PostgreSQL."""
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL: DATABASE_URL does not name it (threads need their own connections)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


def together(work: Callable[[int], Result], count: int = THREADS, *, timeout: float = 120.0) -> list[Result]:
    """``work(number)`` in ``count`` threads released at once, each on its own database connection
    (closed after); their results in order. The first error a thread raised is raised here once all
    have finished, and a thread still running after ``timeout`` seconds fails the test (a deadlock)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[number] = work(number)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]
    return results
