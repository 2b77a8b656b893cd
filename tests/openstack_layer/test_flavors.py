"""rtkvm flavors as Nova flavors: the extra specs, and a sync that touches only rtkvm's keys."""

from __future__ import annotations

from typing import Any

import pytest

from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError
from rtkvm.openstack.flavors import nova_flavor, sync

SPEC = RtGuestSpec(
    name="rt.small", vcpus=2, memory_mib=256, cpu_policy="mixed", realtime_mask="^0",
    emulator_threads_policy="share", page_size="2M", priority=40,
)  # fmt: skip


class FakeNova:
    """Nova's flavor API as far as sync uses it; records every write."""

    def __init__(self, flavors: list[dict[str, Any]] | None = None) -> None:
        self.flavors = flavors or []
        self.writes: list[tuple[str, str, Any]] = []

    def call(self, service_type: str, method: str, path: str, **kw: Any) -> Any:
        assert service_type == "compute" and kw.get("microversion") == "2.86"
        if method == "GET":
            return {"flavors": self.flavors}
        self.writes.append((method, path, kw.get("json")))
        if method == "POST" and path == "/flavors":
            return {"flavor": {"id": "f1", **kw["json"]["flavor"]}}
        return None


def test_a_flavor_requires_rt_readiness_and_its_networks_and_carries_rtkvm_s_keys() -> None:
    flavor = nova_flavor(SPEC, networks=["blue"])
    assert flavor.extra_specs["trait:CUSTOM_RTKVM_RT_READY"] == "required"
    assert flavor.extra_specs["trait:CUSTOM_RTKVM_NET_BLUE"] == "required"
    assert flavor.extra_specs["rtkvm:cpu_realtime_priority"] == "40"
    assert flavor.extra_specs["hw:mem_page_size"] == "2048"
    lab = nova_flavor(SPEC, admit_waived=True)
    assert "trait:CUSTOM_RTKVM_RT_READY" not in lab.extra_specs
    assert lab.extra_specs["trait:CUSTOM_RTKVM_RT_ADMITTED"] == "required"


def test_sync_creates_then_changes_only_rtkvm_s_keys() -> None:
    nova = FakeNova()
    (made,) = sync(nova, [nova_flavor(SPEC, networks=["blue"])])
    assert made.action == "created" and nova.writes[0][1] == "/flavors"
    existing = {
        "id": "f1", "name": "rt.small", "vcpus": 2, "ram": 256, "disk": 1,
        "extra_specs": {**made.set_keys, "quota:disk_read_iops_sec": "100"},
    }  # fmt: skip
    nova = FakeNova([existing])
    (same,) = sync(nova, [nova_flavor(SPEC, networks=["blue"])])
    assert same.action == "unchanged" and nova.writes == []
    moved = SPEC.model_copy(update={"priority": 30})
    (changed,) = sync(nova, [nova_flavor(moved)])  # blue no longer needed
    assert changed.set_keys == {"rtkvm:cpu_realtime_priority": "30"}
    assert changed.removed_keys == ("trait:CUSTOM_RTKVM_NET_BLUE",)
    # the operator's own key stays: only rtkvm's keys are ever removed
    assert all("quota:" not in path for _, path, _ in nova.writes)


def test_a_size_change_is_refused_with_what_to_do() -> None:
    nova = FakeNova([{"id": "f1", "name": "rt.small", "vcpus": 4, "ram": 256, "disk": 1}])
    with pytest.raises(InputError, match="size cannot change"):
        sync(nova, [nova_flavor(SPEC)])
    assert nova.writes == []
