"""Failed authentications per source: counted, logged, and slowed down past a limit.

:class:`AuthThrottle` keeps, per client address, the times of its recent
failed authentications (a sliding window). Past ``limit`` failures in
``window_s`` seconds the address is refused with 429 until the window has
room again, so a token cannot be guessed at the speed of the network. It
lives in one API process (each process of a cluster counts its own). This
module must not know tokens or routes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("rtkvm.api.auth")

MAX_SOURCES = 10_000
"""Addresses remembered at most; the oldest are forgotten first."""


class AuthThrottle:
    def __init__(
        self, clock: Callable[[], float], *, limit: int = 20, window_s: float = 60.0
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, source: str, now: float) -> deque[float]:
        times = self._failures.setdefault(source, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def retry_after(self, source: str) -> float | None:
        """Seconds ``source`` must wait before trying again; None: it may try now."""
        now = self.clock()
        with self._lock:
            times = self._recent(source, now)
            if len(times) < self.limit:
                return None
            return max(1.0, self.window_s - (now - times[0]))

    def failed(self, source: str, why: str) -> None:
        now = self.clock()
        with self._lock:
            self._recent(source, now).append(now)
            if len(self._failures) > MAX_SOURCES:
                self._failures.pop(next(iter(self._failures)))
            count = len(self._failures[source])
        log.warning(
            "authentication failed from %r (%d in %gs): %s", source, count, self.window_s, why
        )
