"""The PostgreSQL backend's health check: no round trip for a live idle connection, a dead one is caught."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection, connections
from django.db.backends.postgresql import base as django_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def spare():
    """A second connection to the test database, outside the test's transaction."""
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL: DATABASE_URL does not name it"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def test_an_idle_live_connection_is_trusted_without_a_query(spare, monkeypatch):
    def no_round_trip(self):
        raise AssertionError("SELECT 1 sent to a healthy idle connection")

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", no_round_trip)
    assert type(spare).__module__ == "tutor.postgresql.base"
    assert spare.is_usable()


def test_a_connection_the_server_ended_is_found_dead(spare):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [spare.connection.info.backend_pid])
    deadline = time.monotonic() + 5
    while spare.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server's message takes a moment to arrive
    assert not spare.is_usable()
    spare.close_if_unusable_or_obsolete()  # what Django does when a request starts ...
    spare.close_if_health_check_failed()  # ... and at its first query
    assert spare.connection is None  # dropped: the request's query opens a new one
