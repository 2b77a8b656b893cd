"""The typed client of rtkvm's API for users and admins: every user-facing URL, typed answers.

:class:`CloudClient` sends the wire models' bodies and returns the wire
models (:mod:`rtkvm.wire.schemas`, :mod:`rtkvm.wire.guest`,
:mod:`rtkvm.wire.measure`) the routes answer with. It must not print, exit
or decide anything: the CLI and the all-in-one stack do.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from rtkvm.errors import CloudError
from rtkvm.wire.base import PAGE_MAX
from rtkvm.wire.console_client import ConsoleSession
from rtkvm.wire.guest import ConsoleLogOut, InstanceOut
from rtkvm.wire.http import Http
from rtkvm.wire.images import ImageOut
from rtkvm.wire.keypairs import KeypairOut
from rtkvm.wire.measure import MeasurementOut
from rtkvm.wire.qualify import QualificationOut
from rtkvm.wire.rtguest import GuestDetailOut, GuestMeasurementOut, GuestVerdictOut
from rtkvm.wire.schemas import (
    CheckOut,
    FlavorOut,
    HostEnrolled,
    HostOut,
    HostPlanOut,
    NetworkOut,
    NicRequest,
    ProjectOut,
    TokenCreated,
    TokenOut,
    UnknownResourceOut,
    UsageOut,
    UserOut,
)
from rtkvm.wire.uuids import is_uuid

DELETABLE = (
    "flavors",
    "networks",
    "projects",
    "users",
    "tokens",
    "hosts",
    "measurements",
    "images",
    "keypairs",
)
"""Resources :meth:`CloudClient.delete` removes by name (or id)."""


M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", InstanceOut, MeasurementOut)
"""Items of a paged list: they have an ``id``."""


def _list(model: type[M], rows: Any) -> list[M]:
    return [model.model_validate(row) for row in rows]


class CloudClient(Http):
    """rtkvm's API as a user or an admin sees it."""

    def _every(self, model: type[P], path: str, all_projects: bool) -> list[P]:
        """Every item of a paged list: ask for the next page after the last id seen."""
        found: list[P] = []
        while True:
            params: dict[str, str] = {"all_projects": "true"} if all_projects else {}
            if found:
                params["marker"] = found[-1].id
            page = _list(model, self.call("GET", path, params=params))
            found += page
            if len(page) < PAGE_MAX:
                return found

    # -- projects, users, tokens -------------------------------------------------------

    def projects(self) -> list[ProjectOut]:
        return _list(ProjectOut, self.call("GET", "/projects"))

    def create_project(self, name: str, **quota: int | None) -> ProjectOut:
        body = {"name": name, **quota}
        return ProjectOut.model_validate(self.call("POST", "/projects", json=body))

    def set_quota(self, project: str, **quota: int | None) -> ProjectOut:
        answer = self.call("PUT", f"/projects/{project}/quota", json=quota)
        return ProjectOut.model_validate(answer)

    def users(self) -> list[UserOut]:
        return _list(UserOut, self.call("GET", "/users"))

    def create_user(self, name: str, project: str, role: str) -> UserOut:
        body = {"name": name, "project": project, "role": role}
        return UserOut.model_validate(self.call("POST", "/users", json=body))

    def tokens(self) -> list[TokenOut]:
        """Tokens the caller may see (an admin: all), without their secrets."""
        return _list(TokenOut, self.call("GET", "/tokens"))

    def create_token(
        self, user: str | None = None, *, lifetime_s: int | None = None
    ) -> TokenCreated:
        body: dict[str, object] = {"user": user}
        if lifetime_s is not None:
            body["lifetime_s"] = lifetime_s
        return TokenCreated.model_validate(self.call("POST", "/tokens", json=body))

    # -- hosts ---------------------------------------------------------------------------

    def hosts(self) -> list[HostOut]:
        return _list(HostOut, self.call("GET", "/hosts"))

    def enroll_host(self, name: str) -> HostEnrolled:
        return HostEnrolled.model_validate(self.call("POST", "/hosts", json={"name": name}))

    def host(self, name: str) -> HostOut:
        return HostOut.model_validate(self.call("GET", f"/hosts/{name}"))

    def update_host(self, name: str, changes: Mapping[str, object]) -> HostOut:
        """Change what an admin may change (``rt_waiver``, ``pcpu_share``); others stay."""
        return HostOut.model_validate(self.call("PATCH", f"/hosts/{name}", json=dict(changes)))

    def set_rt_waiver(
        self, host: str, reason: str | None, *, pcpu_share: int | None = None
    ) -> HostOut:
        """Set the host's RT waiver (a reason), or clear it (None); with ``pcpu_share``,
        how many guests may share each RT pCPU of the waived host too."""
        body: dict[str, object] = {"rt_waiver": reason}
        if pcpu_share is not None:
            body["pcpu_share"] = pcpu_share
        return self.update_host(host, body)

    def host_plan(self, name: str) -> HostPlanOut:
        """The partition plan and topology the host's agent last registered."""
        return HostPlanOut.model_validate(self.call("GET", f"/hosts/{name}/plan"))

    def host_unknown(self, name: str) -> list[UnknownResourceOut]:
        """Domains and switch ports the host's agent found but the cloud does not know."""
        return _list(UnknownResourceOut, self.call("GET", f"/hosts/{name}/unknown"))

    def begin_qualification(self, host: str, max_latency_us: float | None) -> QualificationOut:
        """Begin qualifying the host: the API records its free RT pCPUs and networks."""
        body = {"max_latency_us": max_latency_us} if max_latency_us is not None else {}
        answer = self.call("POST", f"/hosts/{host}/qualifications", json=body)
        return QualificationOut.model_validate(answer)

    def qualifications(self, host: str, limit: int = 20) -> list[QualificationOut]:
        """The host's qualifications, newest first."""
        answer = self.call("GET", f"/hosts/{host}/qualifications", params={"limit": limit})
        return _list(QualificationOut, answer)

    def qualification(self, qualification_id: str) -> QualificationOut:
        return QualificationOut.model_validate(
            self.call("GET", f"/qualifications/{qualification_id}")
        )

    def end_qualification(
        self, qualification_id: str, *, abandon: bool = False
    ) -> QualificationOut:
        """Judge it from its measurements (``finish``) or end it without a verdict."""
        action = "abandon" if abandon else "finish"
        answer = self.call("POST", f"/qualifications/{qualification_id}/{action}")
        return QualificationOut.model_validate(answer)

    # -- flavors and networks ----------------------------------------------------------

    def flavors(self) -> list[FlavorOut]:
        return _list(FlavorOut, self.call("GET", "/flavors"))

    def flavor(self, name: str) -> FlavorOut:
        return FlavorOut.model_validate(self.call("GET", f"/flavors/{name}"))

    def create_flavor(self, body: Mapping[str, object]) -> FlavorOut:
        return FlavorOut.model_validate(self.call("POST", "/flavors", json=dict(body)))

    def networks(self) -> list[NetworkOut]:
        return _list(NetworkOut, self.call("GET", "/networks"))

    def create_network(self, body: Mapping[str, object]) -> NetworkOut:
        return NetworkOut.model_validate(self.call("POST", "/networks", json=dict(body)))

    # -- servers -------------------------------------------------------------------------

    def servers(self, *, all_projects: bool = False) -> list[InstanceOut]:
        """Every server the caller sees, page by page."""
        return self._every(InstanceOut, "/instances", all_projects)

    def create_server(
        self,
        name: str,
        flavor: str,
        networks: Sequence[str | NicRequest],
        project: str | None = None,
        *,
        image: str | None = None,
        disk_gb: int | None = None,
        key_name: str | None = None,
        user_data: bytes | None = None,
        host: str | None = None,
    ) -> InstanceOut:
        """``networks``: names, or NicRequest for a NIC with the user's address;
        ``image``: boot a copy-on-write disk of this image (``disk_gb`` big), with the
        keypair ``key_name`` and ``user_data`` on its cloud-init seed; ``host`` (admins):
        on that host or nowhere."""
        nics = [n if isinstance(n, str) else n.model_dump(exclude_none=True) for n in networks]
        body: dict[str, object] = {"name": name, "flavor": flavor, "networks": nics}
        encoded = base64.b64encode(user_data).decode() if user_data is not None else None
        for key, value in (
            ("project", project),
            ("image", image),
            ("disk_gb", disk_gb),
            ("key_name", key_name),
            ("user_data", encoded),
            ("host", host),
        ):
            if value is not None:
                body[key] = value
        return InstanceOut.model_validate(self.call("POST", "/instances", json=body))

    # -- keypairs ----------------------------------------------------------------------

    def keypairs(self) -> list[KeypairOut]:
        return _list(KeypairOut, self.call("GET", "/keypairs"))

    def keypair(self, name: str) -> KeypairOut:
        return KeypairOut.model_validate(self.call("GET", f"/keypairs/{name}"))

    def create_keypair(self, name: str, public_key: str) -> KeypairOut:
        body = {"name": name, "public_key": public_key}
        return KeypairOut.model_validate(self.call("POST", "/keypairs", json=body))

    # -- images ------------------------------------------------------------------------

    def images(self) -> list[ImageOut]:
        return _list(ImageOut, self.call("GET", "/images"))

    def image(self, ref: str) -> ImageOut:
        return ImageOut.model_validate(self.call("GET", f"/images/{ref}"))

    def create_image(
        self, name: str, *, shared: bool = False, project: str | None = None
    ) -> ImageOut:
        """A queued image record; its data follows with :meth:`upload_image`."""
        body: dict[str, object] = {"name": name, "shared": shared}
        if project is not None:
            body["project"] = project
        return ImageOut.model_validate(self.call("POST", "/images", json=body))

    def upload_image(self, image_id: str, source: Path) -> ImageOut:
        """Stream the file as the image's data; the answer says what qemu-img found."""
        return ImageOut.model_validate(self.send_file("PUT", f"/images/{image_id}/file", source))

    def server(self, ref: str) -> InstanceOut:
        """By id, or by name within what the caller sees (refused when ambiguous)."""
        if is_uuid(ref):
            return InstanceOut.model_validate(self.call("GET", f"/instances/{ref}"))
        matches = [s for s in self.servers() if s.name == ref]
        if not matches:
            raise CloudError(f"no server named {ref!r}: list them with `rtkvm cloud server list`")
        if len(matches) > 1:
            ids = ", ".join(s.id for s in matches)
            raise CloudError(f"{len(matches)} servers are named {ref!r} ({ids}): use an id")
        return matches[0]

    def server_action(self, instance_id: str, action: str, *, hard: bool = False) -> InstanceOut:
        """Stop, start or reboot (rtkvm.wire.lifecycle); the answer carries the task."""
        body: dict[str, object] = {"action": action}
        if hard:
            body["hard"] = True
        found = self.call("POST", f"/instances/{instance_id}/action", json=body)
        return InstanceOut.model_validate(found)

    def ask_console(self, instance_id: str) -> ConsoleLogOut:
        """Ask the server's host agent for its console log; the answer says when."""
        found = self.call("POST", f"/instances/{instance_id}/console-log")
        return ConsoleLogOut.model_validate(found)

    def open_console(self, instance_id: str) -> ConsoleSession:
        """The server's interactive serial console (close it when done)."""
        return ConsoleSession(
            self.websocket_url(f"/instances/{instance_id}/console"),
            self.token,
            ca_file=self.ca_file,
        )

    def console_log(self, instance_id: str) -> ConsoleLogOut:
        """The server's console log as the API holds it."""
        return ConsoleLogOut.model_validate(
            self.call("GET", f"/instances/{instance_id}/console-log")
        )

    def delete_server(self, instance_id: str, *, force: bool = False) -> None:
        """Delete; ``force`` (admins) frees it without its host's agent (host down)."""
        params = {"force": "true"} if force else None
        self.call("DELETE", f"/instances/{instance_id}", params=params)

    def delete(self, kind: str, ref: str) -> None:
        """Delete one of :data:`DELETABLE` by name (or id)."""
        if kind not in DELETABLE:
            raise ValueError(f"cannot delete {kind!r}: one of {', '.join(DELETABLE)}")
        self.call("DELETE", f"/{kind}/{ref}")

    def usage(self, project: str, since: float | None = None) -> UsageOut:
        params = {"since": since} if since is not None else None
        return UsageOut.model_validate(self.call("GET", f"/usage/{project}", params=params))

    def check(self) -> CheckOut:
        """Every broken invariant of the control plane (admins)."""
        return CheckOut.model_validate(self.call("GET", "/check"))

    # -- measurements --------------------------------------------------------------------

    def measurements(self, *, all_projects: bool = False) -> list[MeasurementOut]:
        """Every measurement the caller sees, newest first, page by page."""
        return self._every(MeasurementOut, "/measurements", all_projects)

    def measurement(self, measurement_id: str) -> MeasurementOut:
        return MeasurementOut.model_validate(self.call("GET", f"/measurements/{measurement_id}"))

    def create_measurement(self, body: Mapping[str, object]) -> MeasurementOut:
        answer = self.call("POST", "/measurements", json=dict(body))
        return MeasurementOut.model_validate(answer)

    # -- guests another engine (Nova) built ---------------------------------------------

    def guest_verdicts(
        self, *, host: str | None = None, verdict: str | None = None
    ) -> list[GuestVerdictOut]:
        """The RT verdicts OpenStack-mode agents last reported (admins)."""
        params = {k: v for k, v in {"host": host, "verdict": verdict}.items() if v is not None}
        return _list(GuestVerdictOut, self.call("GET", "/guest-verdicts", params=params))

    def guest_measurements(self, server_id: str | None = None) -> list[GuestMeasurementOut]:
        """Their measurements (one guest's with ``server_id``), newest first."""
        params = {"server": server_id} if server_id is not None else None
        return _list(GuestMeasurementOut, self.call("GET", "/guest-measurements", params=params))

    def guest(self, server_id: str) -> GuestDetailOut:
        """One such guest: its verdict and its measurements, newest first."""
        return GuestDetailOut.model_validate(self.call("GET", f"/guest-verdicts/{server_id}"))
