"""rtkvm flavors as Nova flavors: the extra specs they carry, and a sync that keeps them so.

:func:`nova_flavor` turns an rtkvm flavor (:class:`~rtkvm.domain.spec.RtGuestSpec`)
into a :class:`NovaFlavor`: Nova's own RT keys and rtkvm's ``rtkvm:`` keys
(:func:`~rtkvm.domain.spec.to_extra_specs`), the required RT trait
(``CUSTOM_RTKVM_RT_READY``, or ``CUSTOM_RTKVM_RT_ADMITTED`` for a lab flavor that
admits waived hosts) and a required trait per network its servers need. Nova's
scheduler then places its servers only on hosts that carry them, and ends any
other request in "No valid host" before a port is bound.

:func:`sync` creates a missing flavor and brings an existing one's extra specs to
what rtkvm wants, touching only the keys rtkvm owns (``hw:`` keys of an RT spec,
``rtkvm:`` keys, ``trait:CUSTOM_RTKVM_*``); an operator's other keys stay. A Nova
flavor's size (vCPUs, RAM, disk) cannot change: a different size is refused with
what to do. This module must not decide which flavors exist (the caller does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rtkvm.domain.spec import NOVA_KEYS, RtGuestSpec, to_extra_specs
from rtkvm.errors import InputError
from rtkvm.openstack.session import RestAPI
from rtkvm.openstack.traits import names

MICROVERSION = "2.86"
"""2.86: Nova validates extra specs of the namespaces it knows (``hw:``, ``trait:``...)."""


@dataclass(frozen=True)
class NovaFlavor:
    name: str
    vcpus: int
    ram: int
    disk: int
    extra_specs: dict[str, str]


@dataclass(frozen=True)
class FlavorSync:
    name: str
    action: str
    """created, updated, unchanged."""
    set_keys: dict[str, str] = field(default_factory=dict)
    removed_keys: tuple[str, ...] = ()
    flavor_id: str = ""


def owned_key(key: str) -> bool:
    """Extra-spec keys rtkvm writes and may therefore change or remove."""
    trait_prefix = f"trait:{names().owned_prefix}"
    return key in NOVA_KEYS or key.startswith(("rtkvm:", trait_prefix))


def nova_flavor(
    spec: RtGuestSpec,
    *,
    networks: Iterable[str] = (),
    admit_waived: bool = False,
    disk_gib: int = 1,
) -> NovaFlavor:
    if disk_gib < 0:
        raise InputError(f"disk {disk_gib} GiB: give 0 or more")
    n = names()
    specs = to_extra_specs(spec)
    if spec.realtime:
        rt_trait = n.rt_admitted if admit_waived else n.rt_ready
        specs[f"trait:{rt_trait}"] = "required"
    for label in networks:
        specs[f"trait:{n.network_trait(label)}"] = "required"
    return NovaFlavor(spec.name, spec.vcpus, spec.memory_mib, disk_gib, specs)


def sync(api: RestAPI, flavors: Iterable[NovaFlavor]) -> list[FlavorSync]:
    existing = {
        f["name"]: f
        for f in api.call(
            "compute", "GET", "/flavors/detail?is_public=None", microversion=MICROVERSION,
            what="list Nova's flavors",
        )["flavors"]
    }  # fmt: skip
    done = []
    for want in flavors:
        have = existing.get(want.name)
        if have is None:
            done.append(_create(api, want))
            continue
        size = (have["vcpus"], have["ram"], have["disk"])
        if size != (want.vcpus, want.ram, want.disk):
            raise InputError(
                f"Nova flavor {want.name} has vCPUs/RAM/disk {size[0]}/{size[1]} MiB/"
                f"{size[2]} GiB but rtkvm's has {want.vcpus}/{want.ram} MiB/{want.disk} GiB: "
                "a Nova flavor's size cannot change; delete it (no server may use it) or "
                "give rtkvm's flavor another name"
            )
        done.append(_update(api, have["id"], want, have.get("extra_specs") or {}))
    return done


def _create(api: RestAPI, want: NovaFlavor) -> FlavorSync:
    body = {
        "flavor": {
            "name": want.name,
            "vcpus": want.vcpus,
            "ram": want.ram,
            "disk": want.disk,
            "description": "RT flavor managed by rtkvm (rtkvm openstack flavor sync)",
        }
    }
    made = api.call(
        "compute", "POST", "/flavors", json=body, microversion=MICROVERSION,
        what=f"create flavor {want.name}",
    )["flavor"]  # fmt: skip
    api.call(
        "compute", "POST", f"/flavors/{made['id']}/os-extra_specs",
        json={"extra_specs": want.extra_specs}, microversion=MICROVERSION,
        what=f"set the extra specs of flavor {want.name}",
    )  # fmt: skip
    return FlavorSync(want.name, "created", dict(want.extra_specs), (), made["id"])


def _update(api: RestAPI, flavor_id: str, want: NovaFlavor, have: dict[str, str]) -> FlavorSync:
    changed = {k: v for k, v in want.extra_specs.items() if have.get(k) != v}
    stale = tuple(sorted(k for k in have if owned_key(k) and k not in want.extra_specs))
    if changed:
        api.call(
            "compute", "POST", f"/flavors/{flavor_id}/os-extra_specs",
            json={"extra_specs": changed}, microversion=MICROVERSION,
            what=f"update the extra specs of flavor {want.name}",
        )  # fmt: skip
    for key in stale:
        api.call(
            "compute", "DELETE", f"/flavors/{flavor_id}/os-extra_specs/{key}",
            microversion=MICROVERSION, what=f"remove {key} from flavor {want.name}",
        )  # fmt: skip
    action = "updated" if changed or stale else "unchanged"
    return FlavorSync(want.name, action, changed, stale, flavor_id)
