"""Build a guest: plug its NICs, design it for their sockets, define it, start it; undo on failure.

One service for every way a guest is made: ``rtkvm guest create`` and the node
agent (for whichever control plane placed the guest) both call
:meth:`GuestBuilder.build`. The caller designs the domain (a callable that
gets the plugged vhost-user NICs and returns the XML), so the builder never
chooses pCPUs or flavors. A failure at any step removes the domain if it was
defined and unplugs what was plugged; what could not be undone is added to
the error (:class:`GuestBuildError`), never lost.

This module must not design domains, talk to a control plane or print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import ValidationError

from rtkvm.dataplane.backend import DataPlane
from rtkvm.dataplane.layout import GuestNic
from rtkvm.domain.design import VhostUserNic
from rtkvm.errors import GuestBuildError, InputError, RtkvmError
from rtkvm.guest.hypervisor import Hypervisor

Design = Callable[[tuple[VhostUserNic, ...]], str]
"""The domain XML of the guest with these plugged NICs."""


class GuestBuilder:
    """Builds guests on one hypervisor and (optionally) one data plane."""

    def __init__(
        self,
        hypervisor: Hypervisor,
        dataplane: DataPlane | None,
        *,
        say: Callable[[str], object] = lambda _: None,
    ) -> None:
        self.hypervisor = hypervisor
        self.dataplane = dataplane
        self.say = say

    def build(
        self,
        nics: Sequence[GuestNic],
        design: Design,
        *,
        start: bool,
        mac: Callable[[GuestNic], str | None] = lambda _: None,
    ) -> str:
        """Plug, design, define and (with ``start``) start; the domain's name."""
        plugged: list[GuestNic] = []
        name: str | None = None
        try:
            vhost = []
            for nic in nics:
                port = self._dataplane().plug(nic)
                plugged.append(nic)
                mode: Literal["server", "client"] = "client" if port.mode == "client" else "server"
                vhost.append(VhostUserNic(str(port.socket), mac(nic), mode))
                self.say(f"plugged NIC {nic.nic} into {nic.network}: {port.port} {port.socket}")
            name = self.hypervisor.define(design(tuple(vhost)), start=start)
        except BaseException as exc:
            problems = self._undo(name, plugged)
            if problems and isinstance(exc, RtkvmError | ValidationError):
                raise GuestBuildError("; ".join([str(exc), *problems])) from exc
            for problem in problems:
                self.say(problem)
            raise
        return name

    def unplug(self, nics: Sequence[GuestNic]) -> list[str]:
        """Unplug NICs; what failed, one line each (nothing without a data plane)."""
        if not nics or self.dataplane is None:
            return []
        problems = []
        for nic in nics:
            try:
                self.dataplane.unplug(nic)
            except RtkvmError as exc:
                problems.append(f"unplugging NIC {nic.nic} failed: {exc}")
        return problems

    def _undo(self, name: str | None, plugged: list[GuestNic]) -> list[str]:
        problems = []
        if name is not None:
            try:
                self.hypervisor.remove(name)  # leave nothing half-made behind
            except RtkvmError as exc:
                problems.append(f"removing domain {name} failed: {exc}")
        return problems + self.unplug(plugged)

    def _dataplane(self) -> DataPlane:
        if self.dataplane is None:
            raise InputError(
                "this guest has networks but there is no switch to plug them into: "
                "start it with `rtkvm net up`"
            )
        return self.dataplane
