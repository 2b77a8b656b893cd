"""A peer outside the switch: a network namespace behind one end of a veth pair.

Used as the "peer outside the host" of an unmanaged network (the host end of
the veth is the network's uplink) and by the tests. ``NetnsPeer.create``
makes the namespace and the pair and gives the inside end an address (a
tagged peer's on a VLAN interface; on a kernel without VLAN interfaces,
rtkvm's user-space responder answers ARP and ping on the tag instead, see
:mod:`rtkvm.net.tagpeer`); ``delete`` stops what runs in the namespace,
removes both and never raises half-way. Names are checked against the
kernel's limits. This module must not touch the switch.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rtkvm.errors import NetworkError
from rtkvm.footprint import Footprint
from rtkvm.net.names import IFNAMSIZ

_NS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}\Z")
RESPONDER_READY_S = 10.0
"""How long the user-space tagged peer may take to bind its socket."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _no_tx_checksum_offload(netns: str) -> None:
    """Make the namespace's kernel compute UDP/TCP checksums itself.

    A veth hands frames over with the checksum left to "hardware"
    (CHECKSUM_PARTIAL). OVS's userspace datapath reads them from an AF_PACKET
    socket and sends them on unchanged, so the receiver sees a bad checksum
    and silently drops every UDP and TCP packet (ICMP, checksummed in
    software, still passes: ping works, sockperf does not).
    """
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "ethtool", "-K", "eth0", "tx", "off"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise NetworkError(
            f"cannot turn off TX checksum offload in {netns} ({done.stderr.strip()}): "
            "without it UDP through OVS's userspace datapath is dropped; install ethtool"
        )


@dataclass(frozen=True)
class NetnsPeer:
    netns: str
    host_if: str
    """The end left in the host namespace: plug it into a bridge as an uplink."""
    address: str
    """CIDR address of the inside end (named eth0 in the namespace)."""
    responder: bool = False
    """The address is answered by rtkvm's user-space tagged peer (ARP and ping only): the
    kernel has no VLAN interfaces."""

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    @classmethod
    def create(
        cls, netns: str, host_if: str, address: str, *, vlan: int | None = None
    ) -> NetnsPeer:
        """The peer; with ``vlan`` its address sits on a tagged sub-interface (a trunk peer)."""
        if not _NS.match(netns):
            raise NetworkError(f"namespace name {netns!r}: use up to 31 of [a-z0-9_-]")
        if not 0 < len(host_if) <= IFNAMSIZ or "/" in host_if or " " in host_if:
            raise NetworkError(f"interface name {host_if!r} must be 1-{IFNAMSIZ} plain chars")
        peer = cls(netns, host_if, address)
        inside = f"{host_if[: IFNAMSIZ - 1]}p"
        Footprint().register("netns_peer", netns, uplink=host_if)
        try:
            _ip("netns", "add", netns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", netns)
            _ip("-n", netns, "link", "set", inside, "name", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _no_tx_checksum_offload(netns)
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("link", "set", host_if, "up")
            if vlan is None:
                _ip("-n", netns, "addr", "add", address, "dev", "eth0")
            elif _vlan_interface(netns, vlan):
                _ip("-n", netns, "addr", "add", address, "dev", f"eth0.{vlan}")
            else:
                _start_responder(netns, address, vlan)
                peer = cls(netns, host_if, address, responder=True)
        except NetworkError:
            peer.delete()
            raise
        return peer

    def exec(
        self, args: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def delete(self) -> list[str]:
        """Stop what runs in the namespace (a responder, a sockperf server), remove the veth
        pair and the namespace; returns what could not be removed."""
        errors = _stop_processes(self.netns)
        if _ip("link", "show", self.host_if, check=False).returncode == 0:
            done = _ip("link", "del", self.host_if, check=False)
            if done.returncode != 0:
                errors.append(done.stderr.strip())
        if self.netns in _ip("netns", "list", check=False).stdout.split():
            done = _ip("netns", "del", self.netns, check=False)
            if done.returncode != 0:
                errors.append(done.stderr.strip())
        if not errors:
            Footprint().unregister("netns_peer", self.netns)
        return errors


def _vlan_interface(netns: str, vlan: int) -> bool:
    """Make eth0.VLAN in the namespace; False when this kernel has no VLAN interfaces."""
    dev = f"eth0.{vlan}"
    done = _ip("-n", netns, "link", "add", "link", "eth0", "name", dev, "type", "vlan", "id",
               str(vlan), check=False)  # fmt: skip
    if done.returncode != 0:
        if "Unknown device type" in done.stderr:
            return False  # no CONFIG_VLAN_8021Q
        raise NetworkError(f"cannot make a VLAN {vlan} peer: {done.stderr.strip()}")
    _ip("-n", netns, "link", "set", dev, "up")
    return True


def _start_responder(netns: str, address: str, vlan: int) -> None:
    """rtkvm's user-space tagged peer on the namespace's eth0, detached; returns once it
    listens, NetworkError with what it said otherwise."""
    argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "rtkvm.net.tagpeer", "eth0",
            address, str(vlan)]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], RESPONDER_READY_S)
    line = proc.stdout.readline().strip() if ready else ""
    if line != "ready":
        proc.kill()
        rest = proc.communicate(timeout=5)[0] if ready else ""
        raise NetworkError(
            f"the user-space tagged peer (VLAN {vlan}, this kernel has no VLAN interfaces) did "
            f"not start in {netns}: {(line + ' ' + rest).strip()[-300:] or 'no answer'}"
        )


def _stop_processes(netns: str) -> list[str]:
    """SIGTERM, then SIGKILL, every process in the namespace; what could not be stopped."""
    if netns not in _ip("netns", "list", check=False).stdout.split():
        return []
    pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split()]
            if not pids:
                return []
            time.sleep(0.1)
    return [f"processes {pids} in {netns} did not stop"]
