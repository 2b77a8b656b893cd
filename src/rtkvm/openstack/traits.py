"""The traits rtkvm publishes on a compute node's resource provider, and how they merge.

Names are data (``[traits]`` of ``rtkvm/data/openstack.toml``). :func:`node_traits`
says which traits a node should carry from its doctor verdict, an admin's waiver and
its wired physical networks; :func:`merged` applies that to the provider's current
set, changing only traits rtkvm owns (their names start with the owned prefix).
This module is pure: it must not talk to Placement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from rtkvm.errors import InputError
from rtkvm.net.names import check_label
from rtkvm.shipped import parse_toml, shipped_text

CUSTOM_TRAIT = re.compile(r"^CUSTOM_[A-Z0-9_]{1,248}\Z")
"""Placement's rule for a custom trait's name (255 characters at most)."""


@dataclass(frozen=True)
class TraitNames:
    owned_prefix: str
    rt_ready: str
    rt_waived: str
    rt_admitted: str
    network: str
    """A format with ``{label}``."""

    def network_trait(self, label: str) -> str:
        check_label("physical network", label)
        return self.network.format(label=label.upper())

    def owned(self, trait: str) -> bool:
        return trait.startswith(self.owned_prefix)


@cache
def names() -> TraitNames:
    """The shipped trait names, checked against Placement's and rtkvm's own rules."""
    table = parse_toml(shipped_text("openstack.toml"), "rtkvm/data/openstack.toml")["traits"]
    found = TraitNames(**{k: str(v) for k, v in table.items()})
    for trait in (found.rt_ready, found.rt_waived, found.rt_admitted, found.network_trait("x")):
        if not CUSTOM_TRAIT.match(trait) or not found.owned(trait):
            raise InputError(
                f"rtkvm/data/openstack.toml: trait {trait!r} must be a custom trait "
                f"(CUSTOM_ and capitals, digits, _) starting with {found.owned_prefix!r}"
            )
    return found


def node_traits(verdict: str, waiver: str | None, physnets: Iterable[str]) -> frozenset[str]:
    """The traits rtkvm wants on a node: RT readiness (or the waiver) and one per wire."""
    n = names()
    wanted = {n.network_trait(label) for label in physnets}
    if verdict == "ready":
        wanted |= {n.rt_ready, n.rt_admitted}
    elif waiver is not None:
        wanted |= {n.rt_waived, n.rt_admitted}
    return frozenset(wanted)


def merged(current: Iterable[str], wanted: Iterable[str]) -> frozenset[str]:
    """The provider's traits with rtkvm's replaced by ``wanted``; all others kept."""
    n = names()
    foreign = {t for t in current if not n.owned(t)}
    stray = [t for t in wanted if not n.owned(t)]
    if stray:
        raise InputError(f"rtkvm publishes only its own traits, not {sorted(stray)}")
    return frozenset(foreign | set(wanted))
