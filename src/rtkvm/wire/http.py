"""The HTTP transport under rtkvm's typed clients: one endpoint, one credential, errors.

:class:`Http` wraps an ``httpx.Client``; pass ``http=`` to run it over any
transport (tests use an in-process ASGI transport, no sockets). Every non-2xx
answer raises :class:`CloudError` with the server's message, which already
says what to change. Paths are the clients' business
(:mod:`rtkvm.wire.user_client`, :mod:`rtkvm.wire.agent_client`); this module
must not name one, print or exit.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from rtkvm.errors import CloudError
from rtkvm.wire.base import DEFAULT_URL

__all__ = ["API_ROOT", "DEFAULT_URL", "Http"]
API_ROOT = "/v1"
"""Where the API's version document is, and every resource under it."""


class Http:
    """One API endpoint and credential."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        ca_file: str | None = None,
    ) -> None:
        """``ca_file``: verify an https API against this CA bundle (a self-signed
        certificate is its own CA); default the system's CAs."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if http is None:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=ca_file) if ca_file is not None else True
            )
            http = httpx.Client(base_url=url, timeout=timeout, verify=verify)
        http.headers.update(headers)
        self.http = http
        self.token = token
        self.ca_file = ca_file

    def websocket_url(self, path: str) -> str:
        """The ``ws://`` (``wss://``) URL of ``API_ROOT + path`` on this endpoint."""
        base = str(self.http.base_url).rstrip("/")
        scheme, _, rest = base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{API_ROOT}{path}"

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        """One request to ``API_ROOT + path``; returns the decoded JSON body (None for 204)."""
        try:
            response = self.http.request(method, f"{API_ROOT}{path}", json=json, params=params)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return _answer(response)

    def send_file(self, method: str, path: str, source: Path) -> Any:
        """The file as the request body (streamed, application/octet-stream); the decoded
        JSON answer."""
        try:
            with source.open("rb") as data:
                response = self.http.request(
                    method,
                    f"{API_ROOT}{path}",
                    content=_chunks(data),
                    headers={"Content-Type": "application/octet-stream"},
                )
        except OSError as exc:
            raise CloudError(f"cannot read {source}: {exc.strerror or exc}") from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return _answer(response)

    def receive_file(self, path: str, dest: Path) -> dict[str, str]:
        """Stream the answer's body into ``dest``; returns the answer's headers."""
        try:
            with self.http.stream("GET", f"{API_ROOT}{path}") as response:
                if response.status_code >= 400:
                    response.read()
                    _answer(response)
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                return dict(response.headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> CloudError:
        return CloudError(
            f"cannot reach the rtkvm API at {self.http.base_url}: {exc}; "
            "check --url / RTKVM_URL and that `rtkvm cloud serve` runs"
        )

    def version(self) -> dict[str, Any]:
        """The API's version document (also: is it up)."""
        return dict(self.call("GET", ""))


CHUNK = 1 << 20
"""Bytes per piece of a streamed file."""


def _chunks(data: Any) -> Any:
    while piece := data.read(CHUNK):
        yield piece


def _answer(response: httpx.Response) -> Any:
    """The decoded JSON body of a 2xx answer; CloudError with the server's reason else."""
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except (ValueError, AttributeError):
            detail = response.text
        raise CloudError(f"{detail} (HTTP {response.status_code})", response.status_code)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()
