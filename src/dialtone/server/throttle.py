"""Throttling of failed sign-ins, per Twilio number and per client address.

In memory, per process: good for one server; behind several Lambda instances each
instance counts on its own (a shared store would be the next step).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from threading import Lock


class FailureThrottle:
    """Allows `limit` failures per key in a sliding `window` (seconds); then refuses until the
    oldest failure ages out."""

    def __init__(
        self, limit: int = 5, window: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before any of `keys` may try again; 0 when none is blocked."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self.limit:
                    wait = max(wait, failures[-self.limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def fail(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)
                if len(self._failures) > 100_000:  # bound memory under a spray of keys
                    self._failures.pop(next(iter(self._failures)))

    def succeed(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
