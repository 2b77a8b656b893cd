"""A session with an OpenStack cloud named in a ``clouds.yaml``: tokens and endpoints.

openstacksdk's loader reads the file (``--os-cloud``/``OS_CLOUD``; the file from
``--os-config-file``/``OS_CLIENT_CONFIG_FILE`` or the standard places) with
every auth type it knows (password, application credentials, tokens), and
keystoneauth keeps the token fresh. :class:`CloudSession` gives rtkvm's
clients an endpoint per service type and a current token, and does REST calls
with a microversion. Nothing here assumes rtkvm's all-in-one: any cloud's
``clouds.yaml`` works. This module must not decide what to ask a service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from rtkvm.errors import OpenStackError


class RestAPI(Protocol):
    """What rtkvm's OpenStack clients need of a session (tests give a recording fake)."""

    def call(
        self,
        service_type: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        microversion: str | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> Any: ...


class CloudSession:
    def __init__(self, cloud: str, config_file: Path | None = None) -> None:
        from keystoneauth1 import exceptions as ks_exc
        from openstack import config as os_config
        from openstack import exceptions as os_exc

        files = [str(config_file)] if config_file is not None else None
        try:
            loader = os_config.OpenStackConfig(config_files=files)
            self.region = loader.get_one(cloud=cloud)
            self.session = self.region.get_session()
        except (os_exc.OpenStackCloudException, ks_exc.ClientException, OSError) as exc:
            where = config_file or "the standard clouds.yaml places"
            raise OpenStackError(f"cloud {cloud!r} ({where}): {exc}") from None
        self.cloud = cloud
        self.interface = self.region.get_interface() or "public"
        self.region_name = self.region.get_region_name() or None

    def endpoint(self, service_type: str) -> str:
        from keystoneauth1 import exceptions as ks_exc

        try:
            url = self.session.get_endpoint(
                service_type=service_type,
                interface=self.interface,
                region_name=self.region_name,
            )
        except ks_exc.ClientException as exc:
            raise OpenStackError(f"cloud {self.cloud!r}: {service_type}: {exc}") from None
        if not url:
            raise OpenStackError(f"cloud {self.cloud!r} has no {service_type} endpoint")
        return str(url).rstrip("/")

    def token(self) -> str:
        from keystoneauth1 import exceptions as ks_exc

        try:
            token = self.session.get_token()
        except ks_exc.ClientException as exc:
            raise OpenStackError(f"cloud {self.cloud!r}: could not authenticate: {exc}") from None
        return str(token)

    def call(
        self,
        service_type: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        microversion: str | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> Any:
        """One REST call; the decoded JSON body (None when empty); OpenStackError otherwise."""
        from keystoneauth1 import exceptions as ks_exc

        url = self.endpoint(service_type) + path
        headers = {"Accept": "application/json"}
        if microversion is not None:
            headers["OpenStack-API-Version"] = f"{_api_name(service_type)} {microversion}"
            if service_type == "compute":
                headers["X-OpenStack-Nova-API-Version"] = microversion
        # A reused keep-alive connection the server has just closed fails at once; a GET,
        # DELETE or PUT is safe to send again, a POST is not (it may have been acted on).
        retries = 0 if method == "POST" else 2
        try:
            answer = self.session.request(
                url, method, json=json, headers=headers, raise_exc=False, connect_retries=retries
            )
        except ks_exc.ClientException as exc:
            raise OpenStackError(f"{what or method + ' ' + path}: {exc}") from None
        if answer.status_code not in ok:
            raise OpenStackError(
                f"{what or method + ' ' + path}: {service_type} answered "
                f"{answer.status_code}: {answer.text[:500]}",
                status=answer.status_code,
            )
        return answer.json() if answer.content else None

    def upload(self, service_type: str, path: str, data: bytes, *, what: str) -> None:
        """PUT raw bytes (an image's data to Glance); OpenStackError unless 204."""
        from keystoneauth1 import exceptions as ks_exc

        url = self.endpoint(service_type) + path
        try:
            answer = self.session.put(
                url,
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                raise_exc=False,
            )
        except ks_exc.ClientException as exc:
            raise OpenStackError(f"{what}: {exc}") from None
        if answer.status_code != 204:
            raise OpenStackError(
                f"{what}: {service_type} answered {answer.status_code}: {answer.text[:500]}",
                status=answer.status_code,
            )


def _api_name(service_type: str) -> str:
    return {"compute": "compute", "placement": "placement", "image": "image"}.get(
        service_type, service_type
    )
