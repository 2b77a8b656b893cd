"""The all-in-one's service configurations: rtkvm's templates filled with the stack's values.

The templates are data (``rtkvm/data/openstack/*.conf``, Python format fields);
:func:`render_all` fills them from a :class:`ConfigValues` and returns
``{relative path: text}`` under the stack's ``etc/``; :func:`write_all` writes
them (0600). nova-compute's RT options are not here: they come from the
partition plan through :mod:`rtkvm.openstack.novaconf`, into the drop-in file
``etc/nova/nova.conf.d/50-rtkvm.conf``. With rtkvm's switch attached
(:class:`~rtkvm.openstack.neutronwiring.NeutronWiring`), ML2's physical
networks, the OVS agent's configuration and os-vif's ovsdb come from its
layout. This module must not start anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rtkvm.openstack.aio.layout import AioSettings, Secrets, StackLayout
from rtkvm.openstack.neutronwiring import NeutronWiring
from rtkvm.shipped import shipped_text

DATABASES = ("keystone", "placement", "glance", "nova_api", "nova_cell0", "nova_cell1")
"""PostgreSQL databases; Neutron's is on MariaDB (:mod:`rtkvm.openstack.aio.mariadb`)."""
FILES = {
    "keystone/keystone.conf": ("keystone.conf", "keystone"),
    "placement/placement.conf": ("placement.conf", "placement"),
    "glance/glance-api.conf": ("glance-api.conf", "glance"),
    "nova/nova.conf": ("nova.conf", "nova"),
    "neutron/neutron.conf": ("neutron.conf", "neutron"),
    "neutron/plugins/ml2/ml2_conf.ini": ("ml2_conf.ini", "neutron"),
}
"""Config file under etc/ -> (template, the service user whose credentials it holds)."""
AGENT_FILE = "neutron/plugins/ml2/openvswitch_agent.ini"
"""Written only with rtkvm's switch attached (the agent runs only then)."""
OS_VIF_DEFAULT_OVSDB = "tcp:127.0.0.1:6640"
"""os-vif's own default, kept when no switch is attached (nothing is plugged then)."""


@dataclass(frozen=True)
class ConfigValues:
    layout: StackLayout
    settings: AioSettings
    secrets: Secrets
    venv: Path
    host: str
    libvirt_uri: str
    db_url: dict[str, str]
    """Database name -> SQLAlchemy URL (psycopg2 driver, as the services expect)."""
    wiring: NeutronWiring | None = None
    """rtkvm's switch on this host, when one is attached (``up --switch``)."""


def auth_options(values: ConfigValues, user: str) -> str:
    """keystoneauth password options for a service user of the ``service`` project."""
    return "\n".join(
        (
            "auth_type = password",
            f"auth_url = {values.settings.auth_url}",
            f"www_authenticate_uri = {values.settings.auth_url}",
            "project_domain_name = Default",
            "user_domain_name = Default",
            "project_name = service",
            f"username = {user}",
            f"password = {values.secrets.service}",
            f"region_name = {values.settings.region}",
        )
    )


def transport_url(settings: AioSettings, secrets: Secrets) -> str:
    return f"rabbit://rtkvm:{secrets.rabbit}@127.0.0.1:{settings.ports['rabbit']}/"


def render_all(values: ConfigValues) -> dict[str, str]:
    fields: dict[str, str] = {
        "state": str(values.layout.root),
        "etc": str(values.layout.root / "etc"),
        "venv": str(values.venv),
        "host": values.host,
        "region": values.settings.region,
        "libvirt_uri": values.libvirt_uri,
        "transport_url": transport_url(values.settings, values.secrets),
        **{f"db_{name}": url for name, url in values.db_url.items()},
        **_switch_fields(values),
    }
    files = dict(FILES)
    if values.wiring is not None:
        files[AGENT_FILE] = ("openvswitch_agent.ini", "neutron")
    out: dict[str, str] = {}
    for path, (template, user) in files.items():
        auth = auth_options(values, user)
        text = shipped_text(f"openstack/{template}")
        out[path] = text.format(**fields, authtoken=auth, service_auth=auth)
    return out


def _switch_fields(values: ConfigValues) -> dict[str, str]:
    wiring = values.wiring
    if wiring is None:
        return {"flat_networks": "", "vlan_physnets": "", "ovsdb_connection": OS_VIF_DEFAULT_OVSDB}
    physnets = ",".join(wiring.physnets)
    return {
        "flat_networks": physnets,
        "vlan_physnets": physnets,
        "ovsdb_connection": wiring.ovsdb,
        "bridge_mappings": wiring.bridge_mappings,
        "vhost_socket_dir": wiring.socket_dir,
        "of_port": str(values.settings.ports["neutron_of"]),
    }


def write_all(layout: StackLayout, files: dict[str, str]) -> list[str]:
    """Write the files (0600); the paths whose content changed."""
    changed = []
    for rel, text in files.items():
        path = layout.root / "etc" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text() if path.is_file() else None
        if old == text:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        changed.append(rel)
    return changed
