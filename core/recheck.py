"""What a server process read from the database and trusts for a few seconds before reading it again.

The API key check and the course model's fingerprint run on nearly every request; each keeps
what it read here for a configured number of seconds (TUTOR_API_KEY_RECHECK,
TRACING_MODEL_RECHECK), which saves a query per request at the price of that much staleness
for changes made by other processes.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class Recent(Generic[Value]):
    """key -> the value read and when (monotonic). Holds at most ``size`` keys: at that many it
    starts afresh rather than grow without bound (many keys or courses in one process)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: dict[Hashable, tuple[float, Value]] = {}

    def get(self, key: Hashable, within: float) -> Value | None:
        """The value read for ``key`` less than ``within`` seconds ago, else None."""
        seen = self._seen.get(key)
        if seen is not None and time.monotonic() - seen[0] < within:
            return seen[1]
        return None

    def put(self, key: Hashable, value: Value, within: float) -> None:
        """Keep ``value`` for ``key`` as read now; nothing is kept when ``within`` is 0 (read every time)."""
        if within <= 0:
            return
        if len(self._seen) >= self._size:
            self._seen.clear()
        self._seen[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        self._seen.pop(key, None)
