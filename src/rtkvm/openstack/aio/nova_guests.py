"""The Nova guests of the all-in-one: found by their disks, destroyed on ``down --purge``.

A Nova guest belongs to this stack when its disks lie in the stack's instance
directory; :func:`destroy` stops and undefines those (a purge takes their
disks with the directory) and never touches any other domain. This module must
not talk to Nova: it is for a stack whose services are already stopped.
"""

from __future__ import annotations

from pathlib import Path

import libvirt

from rtkvm.guest.lifecycle import connect
from rtkvm.openstack.novaguest import parse_nova_guest

UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
)


def ours(xml: str, instances: Path) -> bool:
    guest = parse_nova_guest(xml)
    root = f"{instances}/"
    return guest is not None and any(d.startswith(root) for d in guest.disks)


def destroy(instances: Path, uri: str = "qemu:///system") -> list[str]:
    """Destroy and undefine this stack's Nova guests; their names."""
    if not Path("/var/run/libvirt/libvirt-sock").exists():
        return []  # no libvirtd: no running guest, and definitions go with a purge's files
    gone = []
    with connect(uri) as conn:
        for dom in conn.listAllDomains():
            if not ours(dom.XMLDesc(0), instances):
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(UNDEFINE_FLAGS)
            gone.append(dom.name())
    return gone
