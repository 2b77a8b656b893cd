"""Wake the node agent when one of rtkvm's domains changes state: libvirt's lifecycle events.

:class:`LifecycleWatch` runs libvirt's default event loop in a daemon thread,
holds its own connection with keep-alive, and registers for
``VIR_DOMAIN_EVENT_ID_LIFECYCLE``. Each event of a domain named ``rtkvm-*``
(started, suspended, resumed, stopped, shut down, crashed, defined or
undefined) calls ``on_event`` with the domain's name and the event's name: the
agent then steps at once instead of at its next poll. When the connection
drops (libvirtd restarted) the thread connects again every
``retry_s`` seconds; meanwhile the agent's poll still notices everything, only
later. The events only wake: state is always read again from libvirt, so a
lost event delays and never corrupts. This module must not change a domain.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import libvirt

log = logging.getLogger("rtkvm.guest.events")

PREFIX = "rtkvm-"
EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
_loop_started = threading.Lock()
_loop_running = False


def _run_event_loop() -> None:
    """libvirt's default event implementation, once per process, in a daemon thread."""
    global _loop_running
    with _loop_started:
        if _loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
        _loop_running = True


class LifecycleWatch:
    """Calls ``on_event(domain, event)`` for rtkvm's domains on ``uri``."""

    def __init__(
        self, uri: str, on_event: Callable[[str, str], None], *, retry_s: float = 5.0
    ) -> None:
        self.uri = uri
        self.on_event = on_event
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._conn: Any = None

    def start(self) -> None:
        _run_event_loop()
        threading.Thread(target=self._keep, name="libvirt-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._lost.set()

    def _keep(self) -> None:
        """Connect, register, and connect again whenever the connection is lost."""
        while not self._stop.is_set():
            try:
                self._connect()
            except libvirt.libvirtError as exc:
                log.warning("no libvirt events from %s (polling only): %s", self.uri, exc)
                self._stop.wait(self.retry_s)
                continue
            self._lost.wait()
            self._lost.clear()
            self._close()
            if not self._stop.is_set():
                log.warning("libvirt events from %s lost: connecting again", self.uri)
                self._stop.wait(self.retry_s)
        self._close()

    def _connect(self) -> None:
        conn = libvirt.open(self.uri)
        with contextlib.suppress(libvirt.libvirtError):  # test:///default has no keep-alive
            conn.setKeepAlive(5, 3)
        conn.registerCloseCallback(lambda *_: self._lost.set(), None)
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
        )
        self._conn = conn
        log.info("following libvirt's lifecycle events on %s", self.uri)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def _lifecycle(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        name = dom.name()
        if name.startswith(PREFIX):
            self.on_event(name, EVENTS.get(event, str(event)))
