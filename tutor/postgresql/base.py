"""Django's PostgreSQL backend with a health check that costs no round trip while the connection is fine.

With persistent connections (CONN_MAX_AGE) Django checks a reused connection at the start of
every request (CONN_HEALTH_CHECKS) by sending ``SELECT 1``: a round trip to the server on
every request, about a tenth of what an answer or a next-item request costs in all. An idle
connection has nothing to read, unless the server has written to it: PostgreSQL says so
(a FATAL message, then closes the socket) when it shuts down or ends a backend, and the
kernel reports the close when the server dies. So a connection with nothing to read is
trusted, and one with something to read gets Django's ``SELECT 1``, which drops it if dead.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        if poller.poll(0):
            return super().is_usable()  # the server wrote to an idle connection: ask it
        return True
