"""Housekeeping a create does on the way: failing creates a dead process left 'scheduling'
and hiding creates refused long ago, at most once every few seconds per API process.

Both sweeps are idempotent UPDATEs over the instances table; run on every create they
cost two statements each time for work that is due once in minutes (a stale create
is failed after ``scheduling_stale_s``, a refused one hidden after a day), so each API
process runs them when :data:`INTERVAL_S` has passed since its last run. The time of
that run is the only thing kept in memory; what to do is in the database. This module
must not decide anything about instances itself (``scheduler.claim`` does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from rtkvm.scheduler.claim import fail_stale_scheduling, forget_failed_creates
from rtkvm.settings import Settings

INTERVAL_S = 5.0


class Sweeps:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True (and the clock restarted) when this process should sweep now."""
        now = self.clock()
        with self._lock:
            if self._last is not None and 0 <= now - self._last < INTERVAL_S:
                return False
            self._last = now
            return True

    def run(self, session: Session, now: float) -> None:
        """Both sweeps, in the caller's write transaction."""
        fail_stale_scheduling(session, now, self.settings.scheduling_stale_s)
        forget_failed_creates(session, now, self.settings.failed_create_retention_s)
