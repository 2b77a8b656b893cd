"""A guest's static address on an unmanaged network: ``ADDR/PREFIX``, given by its user.

Unmanaged networks have no DHCP and rtkvm never invents an IP plan: an
address exists only when the user gives one (``--network blue,ip=ADDR/PREFIX``)
or a measurement names one for its run. :func:`host_interface` is the one
rule for what such an address may be: IPv4 (the guest image's /init sets
IPv4 only), with its prefix, a host of its subnet. This module is pure: it
must not look at the database, the host or a guest.
"""

from __future__ import annotations

import ipaddress

from rtkvm.errors import InputError

EXAMPLE = "192.0.2.10/24"


def host_interface(text: str) -> ipaddress.IPv4Interface:
    """``text`` as ADDR/PREFIX; InputError saying what to give instead."""
    if "/" not in text:
        raise InputError(f"{text!r} has no prefix: give ADDR/PREFIX, e.g. {EXAMPLE}")
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise InputError(f"{text!r} is not an IPv4 ADDR/PREFIX: give e.g. {EXAMPLE}") from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise InputError(f"{text!r} is its subnet's network or broadcast address: pick a host")
    if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback:
        raise InputError(f"{text!r} is not a unicast host address: pick one of the subnet's hosts")
    return iface
