"""Kernel command line words that make the guest image's /init use its NIC.

The image's /init (data/image.toml) reads ``rtkvm.ip=ADDR/PREFIX`` (a static
address on eth0: unmanaged networks have no DHCP), ``rtkvm.sockperf_server=IP``
(a sockperf server in the background), ``rtkvm.wait=IP`` (ping until it
answers), ``rtkvm.ping=IP`` (one bounded ping) and ``rtkvm.sockperf="ARGS"``
(a sockperf client; its ``--full-log`` file is printed afterwards, as a
histogram with ``rtkvm.rttlog=hist``). This
module builds those words from checked values and refuses what /init could
not read back (spaces or quotes where none may be). It is pure: it must not
boot guests, read consoles or decide addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rtkvm.errors import InputError

_SAFE_ARG = re.compile(r"^[A-Za-z0-9_./:=,+-]+\Z")


def check_address(address: str) -> ipaddress.IPv4Interface:
    """An IPv4 address with its prefix (10.77.0.11/24); InputError says what is wrong."""
    if "/" not in address:
        raise InputError(
            f"guest address {address!r} has no prefix length: write it as ADDR/PREFIX, "
            "e.g. 10.77.0.11/24"
        )
    try:
        iface = ipaddress.IPv4Interface(address)
    except ValueError as exc:
        raise InputError(f"guest address {address!r} is not an IPv4 ADDR/PREFIX: {exc}") from None
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address) and (
        iface.network.prefixlen < 31
    ):
        raise InputError(
            f"guest address {address!r} is the network or broadcast address of "
            f"{iface.network}: pick a host address"
        )
    return iface


def check_ip(ip: str) -> str:
    """A plain IPv4 address (no prefix), as text."""
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        raise InputError(f"{ip!r} is not an IPv4 address (like 10.77.0.12)") from None


@dataclass(frozen=True)
class GuestNetRun:
    """What the guest does with its NIC on this boot, in /init's order."""

    address: str | None = None
    sockperf_server: str | None = None
    wait_for: str | None = None
    ping: str | None = None
    sockperf_client: tuple[str, ...] = ()
    rtt_histogram: bool = False
    """Print the client's full log as counts per distinct round trip (a console that keeps
    only its end, like Nova's, then holds long runs)."""

    def words(self) -> str:
        """The kernel command line words, space separated ('' when nothing is asked)."""
        out: list[str] = []
        if self.address is not None:
            out.append(f"rtkvm.ip={check_address(self.address).with_prefixlen}")
        if self.sockperf_server is not None:
            out.append(f"rtkvm.sockperf_server={check_ip(self.sockperf_server)}")
        if self.wait_for is not None:
            out.append(f"rtkvm.wait={check_ip(self.wait_for)}")
        if self.ping is not None:
            out.append(f"rtkvm.ping={check_ip(self.ping)}")
        if self.sockperf_client:
            out.append(f'rtkvm.sockperf="{client_words(self.sockperf_client)}"')
        if self.rtt_histogram:
            out.append("rtkvm.rttlog=hist")
        return " ".join(out)


def client_words(argv: Sequence[str]) -> str:
    """sockperf's arguments (without the program name) as one quoted-safe string."""
    args = list(argv)
    if args and args[0] == "sockperf":
        args = args[1:]
    if not args:
        raise InputError("no sockperf arguments to run in the guest")
    bad = [a for a in args if not _SAFE_ARG.match(a)]
    if bad:
        raise InputError(
            f"sockperf arguments {bad} cannot go on a kernel command line (no spaces, "
            "quotes or shell characters)"
        )
    return " ".join(args)
