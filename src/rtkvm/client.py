"""Python client of the control plane API (httpx), used by the CLI and the agent.

:class:`CloudClient` wraps an ``httpx.Client``; pass ``http=`` to run it over
any transport (tests use an in-process ASGI transport, no sockets). Every
non-2xx answer raises :class:`CloudError` with the server's message, which
already says what to change. This module must not print or exit.
"""

from __future__ import annotations

from typing import Any

import httpx

from rtkvm.errors import RtkvmError

DEFAULT_URL = "http://127.0.0.1:8754"


class CloudError(RtkvmError):
    """The API refused a request (or could not be reached); carries the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CloudClient:
    """One API endpoint and credential."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if http is None:
            http = httpx.Client(base_url=url, timeout=timeout)
        http.headers.update(headers)
        self.http = http

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        """One request; returns the decoded JSON body (None for 204)."""
        try:
            response = self.http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise CloudError(
                f"cannot reach the rtkvm API at {self.http.base_url}: {exc}; "
                "check --url / RTKVM_URL and that `rtkvm cloud serve` runs"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise CloudError(f"{detail} (HTTP {response.status_code})", response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- resources ---------------------------------------------------------------

    def projects(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/projects"))

    def create_project(self, name: str, **quota: int | None) -> dict[str, Any]:
        return dict(self.call("POST", "/v1/projects", json={"name": name, **quota}))

    def set_quota(self, project: str, **quota: int | None) -> dict[str, Any]:
        return dict(self.call("PUT", f"/v1/projects/{project}/quota", json=quota))

    def users(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/users"))

    def create_user(self, name: str, project: str, role: str) -> dict[str, Any]:
        body = {"name": name, "project": project, "role": role}
        return dict(self.call("POST", "/v1/users", json=body))

    def create_token(self, user: str | None = None) -> dict[str, Any]:
        return dict(self.call("POST", "/v1/tokens", json={"user": user}))

    def hosts(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/hosts"))

    def enroll_host(self, name: str) -> dict[str, Any]:
        return dict(self.call("POST", "/v1/hosts", json={"name": name}))

    def host(self, name: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/v1/hosts/{name}"))

    def set_rt_waiver(
        self, host: str, reason: str | None, *, pcpu_share: int | None = None
    ) -> dict[str, Any]:
        """Set the host's RT waiver (a reason), or clear it (None); with ``pcpu_share``,
        how many guests may share each RT pCPU of the waived host too."""
        body: dict[str, Any] = {"rt_waiver": reason}
        if pcpu_share is not None:
            body["pcpu_share"] = pcpu_share
        return dict(self.call("PATCH", f"/v1/hosts/{host}", json=body))

    def host_unknown(self, name: str) -> list[dict[str, Any]]:
        """Domains and switch ports the host's agent found but the cloud does not know."""
        return list(self.call("GET", f"/v1/hosts/{name}/unknown"))

    def flavors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/flavors"))

    def create_flavor(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/v1/flavors", json=body))

    def networks(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/networks"))

    def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/v1/networks", json=body))

    def servers(self, *, all_projects: bool = False) -> list[dict[str, Any]]:
        params = {"all_projects": "true"} if all_projects else None
        return list(self.call("GET", "/v1/instances", params=params))

    def create_server(
        self, name: str, flavor: str, networks: list[str], project: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "flavor": flavor, "networks": networks}
        if project is not None:
            body["project"] = project
        return dict(self.call("POST", "/v1/instances", json=body))

    def server(self, ref: str) -> dict[str, Any]:
        """By id, or by name within what the caller sees (refused when ambiguous)."""
        if len(ref) == 36 and ref.count("-") == 4:
            return dict(self.call("GET", f"/v1/instances/{ref}"))
        matches = [s for s in self.servers() if s["name"] == ref]
        if not matches:
            raise CloudError(f"no server named {ref!r}: list them with `rtkvm cloud server list`")
        if len(matches) > 1:
            ids = ", ".join(s["id"] for s in matches)
            raise CloudError(f"{len(matches)} servers are named {ref!r} ({ids}): use an id")
        return dict(matches[0])

    def delete(self, kind: str, ref: str) -> None:
        self.call("DELETE", f"/v1/{kind}/{ref}")

    def delete_server(self, instance_id: str, *, force: bool = False) -> None:
        """Delete; ``force`` (admins) frees it without its host's agent (host down)."""
        params = {"force": "true"} if force else None
        self.call("DELETE", f"/v1/instances/{instance_id}", params=params)

    def usage(self, project: str, since: float | None = None) -> dict[str, Any]:
        params = {"since": since} if since is not None else None
        return dict(self.call("GET", f"/v1/usage/{project}", params=params))
