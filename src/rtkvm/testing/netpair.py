"""Test helper: two network namespaces joined by a veth pair, each end with an address.

:func:`linked_namespaces` makes them (the server's namespace is a
:class:`~rtkvm.net.netns.NetnsPeer`, registered in rtkvm's footprint while it
lives), yields ``(client namespace, server peer)`` and removes both on the
way out, failing when something could not be removed. Needs root. This
module must not touch any interface or namespace it did not make.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from rtkvm.net.netns import NetnsPeer


@contextmanager
def linked_namespaces(
    server_netns: str,
    client: str,
    veth: str,
    *,
    server_address: str,
    client_address: str,
) -> Iterator[tuple[str, NetnsPeer]]:
    """Namespace ``server_netns`` (the peer, ``server_address``) and ``client`` (with
    ``client_address`` on ``veth``, the pair's other end), linked by the veth pair."""
    server = NetnsPeer.create(server_netns, veth, server_address)
    try:
        # the peer's host end moves into the client's namespace: a direct veth, no switch
        subprocess.run(["ip", "netns", "add", client], check=True)
        subprocess.run(["ip", "link", "set", server.host_if, "netns", client], check=True)
        for args in (
            ["addr", "add", client_address, "dev", server.host_if],
            ["link", "set", server.host_if, "up"],
        ):
            subprocess.run(["ip", "-n", client, *args], check=True)
        yield client, server
    finally:
        errors = server.delete()
        subprocess.run(["ip", "netns", "del", client], check=False)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        left = [ns for ns in (client, server.netns) if ns in listed.split()]
        if errors or left:
            raise AssertionError(f"namespaces not removed: {left or ''} {errors or ''}")
