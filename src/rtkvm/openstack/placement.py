"""A typed client for the parts of OpenStack Placement's REST API that rtkvm uses.

Resource providers by name, their traits with the provider generation, custom
traits. Every request names its microversion (:data:`MICROVERSION`). A
``PUT`` of traits carries the generation it was computed from; Placement answers
409 ``placement.concurrent_update`` when another writer (nova-compute's resource
tracker, an operator) changed the provider meanwhile, which becomes
:class:`ProviderGenerationError` so the caller can read again and retry. Any other
failure is a :class:`PlacementError` that says what was asked and what Placement
answered. Authentication is a token (Keystone's, or ``admin`` with Placement's
``noauth2``); this module must not decide which traits a node carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from rtkvm.errors import PlacementError, ProviderGenerationError

MICROVERSION = "placement 1.39"
"""1.39: ``required=in:A,B`` (any-of traits); everything used here is older."""


@dataclass(frozen=True)
class Provider:
    uuid: str
    name: str
    generation: int


@dataclass(frozen=True)
class ProviderTraits:
    traits: frozenset[str]
    generation: int


class PlacementClient:
    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.http = httpx.Client(
            base_url=self.endpoint,
            headers={
                "X-Auth-Token": token,
                "OpenStack-API-Version": MICROVERSION,
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            response = self.http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise PlacementError(
                f"cannot reach Placement at {self.endpoint} ({method} {path}): {exc}"
            ) from None
        if response.status_code >= 400:
            code, detail = _error_of(response)
            kind = ProviderGenerationError if code == "placement.concurrent_update" else None
            raise (kind or PlacementError)(
                f"Placement answered {response.status_code} to {method} {path}: {detail}",
                response.status_code,
                code,
            )
        return response

    def provider(self, name: str) -> Provider | None:
        """The resource provider of this name (a compute node's is its hypervisor name)."""
        found = self._call("GET", f"/resource_providers?name={quote(name)}").json()
        rows = found.get("resource_providers", [])
        if not rows:
            return None
        row = rows[0]
        return Provider(str(row["uuid"]), str(row["name"]), int(row["generation"]))

    def create_provider(self, name: str) -> Provider:
        """A new root provider (tests and benchmarks: nova-compute makes a node's own)."""
        row = self._call("POST", "/resource_providers", json={"name": name}).json()
        return Provider(str(row["uuid"]), str(row["name"]), int(row["generation"]))

    def traits(self, uuid: str) -> ProviderTraits:
        body = self._call("GET", f"/resource_providers/{uuid}/traits").json()
        return ProviderTraits(frozenset(body["traits"]), int(body["resource_provider_generation"]))

    def put_traits(self, uuid: str, traits: frozenset[str], generation: int) -> int:
        """Set the provider's traits as of ``generation``; returns the new generation."""
        body = {"traits": sorted(traits), "resource_provider_generation": generation}
        answer = self._call("PUT", f"/resource_providers/{uuid}/traits", json=body).json()
        return int(answer["resource_provider_generation"])

    def ensure_trait(self, name: str) -> None:
        """Create the custom trait unless it exists (Placement answers 201 or 204)."""
        self._call("PUT", f"/traits/{quote(name)}")


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(error code, detail) of a Placement error body; the raw text when it is not JSON."""
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return "", response.text[:300]
    if not errors:
        return "", response.text[:300]
    first = errors[0]
    return str(first.get("code", "")), str(first.get("detail", first.get("title", "")))[:300]
