"""libvirt's lifecycle events reach the agent: an rtkvm domain that starts and stops is
reported at once; other domains are not (libvirt's test driver, real event loop)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import libvirt
import pytest

from rtkvm.guest.events import LifecycleWatch

URI = "test:///default"
XML = """<domain type='test'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os></domain>"""


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    opened = libvirt.open(URI)
    yield opened
    for dom in opened.listAllDomains(0):
        if dom.name().startswith(("rtkvm-evt", "other-evt")):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    opened.close()


def _seen(events: list[tuple[str, str]], want: tuple[str, str]) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if want in events:
            return True
        time.sleep(0.05)
    return False


def test_rtkvm_domains_wake_the_agent_others_do_not(conn: libvirt.virConnect) -> None:
    events: list[tuple[str, str]] = []
    watch = LifecycleWatch(URI, lambda name, event: events.append((name, event)))
    watch.start()
    try:
        deadline = time.monotonic() + 5
        while watch._conn is None and time.monotonic() < deadline:  # registered
            time.sleep(0.05)
        other = conn.defineXML(XML.format(name="other-evt"))
        other.create()
        dom = conn.defineXML(XML.format(name="rtkvm-evt"))
        dom.create()
        assert _seen(events, ("rtkvm-evt", "started"))
        dom.destroy()  # as if the guest powered itself off
        assert _seen(events, ("rtkvm-evt", "stopped"))
        assert not [e for e in events if e[0] == "other-evt"], events
    finally:
        watch.stop()
