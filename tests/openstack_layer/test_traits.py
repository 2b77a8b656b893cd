"""Which traits a node carries, and how they merge with the ones rtkvm does not own."""

from __future__ import annotations

import pytest

from rtkvm.errors import InputError, NetworkError
from rtkvm.openstack.traits import CUSTOM_TRAIT, merged, names, node_traits

NOVA = {"COMPUTE_NODE", "HW_CPU_X86_AVX2", "COMPUTE_STATUS_DISABLED", "CUSTOM_OPERATOR_RACK7"}


def test_a_ready_node_carries_readiness_and_one_trait_per_wire() -> None:
    got = node_traits("ready", None, ["blue", "red2"])
    assert got == {
        "CUSTOM_RTKVM_RT_READY",
        "CUSTOM_RTKVM_RT_ADMITTED",
        "CUSTOM_RTKVM_NET_BLUE",
        "CUSTOM_RTKVM_NET_RED2",
    }
    assert all(CUSTOM_TRAIT.match(t) for t in got)


def test_a_waived_node_says_so_and_an_unready_one_carries_no_rt_trait() -> None:
    # a lab flavor requires RT_ADMITTED (ready or waived), a production one RT_READY
    admitted = "CUSTOM_RTKVM_RT_ADMITTED"
    assert node_traits("not-ready", "lab bench", []) == {"CUSTOM_RTKVM_RT_WAIVED", admitted}
    assert node_traits("not-ready", None, ["blue"]) == {"CUSTOM_RTKVM_NET_BLUE"}
    assert node_traits("ready", "kept from before", []) == {"CUSTOM_RTKVM_RT_READY", admitted}


def test_merging_replaces_only_rtkvm_s_traits() -> None:
    current = NOVA | {"CUSTOM_RTKVM_RT_READY", "CUSTOM_RTKVM_NET_OLD"}
    wanted = node_traits("not-ready", None, ["blue"])
    assert merged(current, wanted) == NOVA | {"CUSTOM_RTKVM_NET_BLUE"}
    with pytest.raises(InputError, match="only its own traits"):
        merged(current, {"HW_CPU_X86_AVX2"})


def test_a_label_that_is_no_physical_network_is_refused() -> None:
    with pytest.raises(NetworkError):
        names().network_trait("Blue-1")
