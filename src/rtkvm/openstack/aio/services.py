"""The OpenStack processes of the all-in-one: what each runs, how it is seen to be up.

:data:`SERVICES` is the table, in start order: the WSGI APIs (Keystone,
Placement, Glance, Neutron, Nova's) served by gunicorn through rtkvm's
``serve_wsgi.py`` run by the cloud virtualenv's Python; with rtkvm's switch
attached, neutron-rpc-server and Neutron's OVS agent on that switch; then
nova-conductor, nova-scheduler and nova-compute (through ``run_nova_compute.py``, which leaves
``<locked/>`` out where libvirt cannot lock guest memory). :func:`argv` builds
a command line, which always names the stack's directory (so a pid file can
be proven). This module must not start or stop anything (the stack does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtkvm.openstack.aio.configs import AGENT_FILE
from rtkvm.openstack.aio.layout import StackLayout
from rtkvm.shipped import DATA_DIR


@dataclass(frozen=True)
class Service:
    name: str
    wsgi: str | None = None
    """MODULE:ATTR of a WSGI application (served on its port), or None for a daemon."""
    config_env: str = ""
    """The environment variable naming the application's configuration directory."""
    config: str = ""
    """Its configuration directory under etc/."""
    port: str = ""
    """Its key in ``[aio.ports]``."""
    health: str = "/"
    """A path that answers without a token once the application runs."""
    console: str = ""
    """The daemon's console script in the virtualenv."""
    files: tuple[str, ...] = ("nova/nova.conf",)
    """A daemon's --config-file arguments, under etc/."""
    needs_switch: bool = False
    """Runs only with rtkvm's switch attached (``rtkvm openstack up --switch``)."""


NEUTRON_FILES = ("neutron/neutron.conf", "neutron/plugins/ml2/ml2_conf.ini")

SERVICES: tuple[Service, ...] = (
    Service("keystone", "keystone.wsgi.api:application", "OS_KEYSTONE_CONFIG_DIR", "keystone",
            "keystone", "/v3"),
    Service("placement", "placement.wsgi.api:application", "OS_PLACEMENT_CONFIG_DIR",
            "placement", "placement"),
    Service("glance", "glance.wsgi.api:application", "OS_GLANCE_CONFIG_DIR", "glance", "glance",
            "/versions"),
    Service("neutron", "neutron.wsgi.api:application", "OS_NEUTRON_CONFIG_DIR", "neutron",
            "neutron"),
    Service("neutron-rpc-server", config="neutron", console="neutron-rpc-server",
            files=NEUTRON_FILES, needs_switch=True),
    Service("neutron-openvswitch-agent", config="neutron", port="neutron_of",
            console="neutron-openvswitch-agent", files=(NEUTRON_FILES[0], AGENT_FILE),
            needs_switch=True),
    Service("nova-api", "nova.wsgi.osapi_compute:application", "OS_NOVA_CONFIG_DIR", "nova",
            "nova"),
    Service("nova-conductor", console="nova-conductor"),
    Service("nova-scheduler", console="nova-scheduler"),
    Service("nova-compute"),
)  # fmt: skip
"""Start order; stopped in the reverse order (nova-compute first: it waits for the conductor)."""


def data_script(name: str) -> Path:
    """A script rtkvm ships for the virtualenv's Python (``rtkvm/data/openstack/NAME``)."""
    return Path(__file__).resolve().parents[2] / DATA_DIR / "openstack" / name


def argv(
    service: Service,
    layout: StackLayout,
    venv: Path,
    port: int,
    drop_locked: bool,
    no_msix: bool = False,
) -> list[str]:
    python = str(venv / "bin" / "python")
    nova_conf = str(layout.etc("nova") / "nova.conf")
    if service.wsgi is not None:
        return [
            python,
            str(data_script("serve_wsgi.py")),
            service.wsgi,
            service.config_env,
            str(layout.etc(service.config)),
            str(port),
            f"{service.name} {layout.marker}",
        ]
    if service.name == "nova-compute":
        return [
            python,
            str(data_script("run_nova_compute.py")),
            "1" if drop_locked else "0",
            "1" if no_msix else "0",
            "--config-file",
            nova_conf,
            "--config-dir",
            str(layout.etc("nova") / "nova.conf.d"),
        ]
    files = [a for f in service.files for a in ("--config-file", str(layout.root / "etc" / f))]
    return [str(venv / "bin" / service.console), *files]
