"""Which PMD polls the uplinks: pmd-rxq-show as OVS 3.1 prints it, judged per bridge."""

from __future__ import annotations

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import uplink_kind
from rtkvm.dataplane.layout import Bridge, UplinkPort
from rtkvm.dataplane.rxq import check_uplinks, parse_rxq
from rtkvm.dataplane.settings import load_settings
from rtkvm.findings import Status
from rtkvm.wire.node import DataplaneDoc

RXQ = """Displaying last 60 seconds pmd usage %
pmd thread numa_id 0 core_id 1:
  isolated : false
  port: up-physblue       queue-id:  0 (enabled)   pmd usage:  0 %
  port: vhu-abc-0         queue-id:  0 (enabled)   pmd usage: NOT AVAIL
  overhead: NOT AVAIL
pmd thread numa_id 1 core_id 9:
  isolated : false
  port: up-physred        queue-id:  0 (enabled)   pmd usage:  0 %
"""


def _bridge(physnet: str, port: str = "", devargs: str = "x") -> Bridge:
    uplink = UplinkPort(f"eth-{physnet}", (), port or f"up-{physnet}", devargs)
    return Bridge(f"rt-{physnet}", physnet, uplink, ("n",))


def test_ports_are_found_on_their_pmds() -> None:
    assert parse_rxq(RXQ) == {"up-physblue": {1}, "vhu-abc-0": {1}, "up-physred": {9}}


def test_an_uplink_is_polled_only_by_a_pmd_on_the_data_plane_cpus() -> None:
    found = {
        f.id: f
        for f in check_uplinks(
            RXQ,
            [_bridge("physblue"), _bridge("physred"), _bridge("physgreen"),
             _bridge("physold", port="", devargs="")],
            CpuSet([1]),
        )
    }  # fmt: skip
    assert found["dataplane.uplink.physblue"].status == Status.PASS
    assert "polled by the PMD on CPU 1" in found["dataplane.uplink.physblue"].message
    assert found["dataplane.uplink.physred"].status == Status.FAIL  # core 9 is not ours
    assert found["dataplane.uplink.physgreen"].status == Status.FAIL  # no PMD at all
    assert "no PMD" in found["dataplane.uplink.physgreen"].message
    old = found["dataplane.uplink.physold"]
    assert old.status == Status.FAIL and "kernel port" in old.message


def test_each_kind_of_uplink_says_what_it_means_for_latency_within_the_wire_s_limit() -> None:
    latency = load_settings().uplink_latency
    longest = UplinkPort("e" * 15, (), "up-" + "p" * 12, "net_af_packet_x,iface=y")
    for up in (longest, UplinkPort("e" * 15)):
        said = uplink_kind(up, latency)
        assert f"; latency: {latency[up.kind]}" in said
        DataplaneDoc(backend="ovs-dpdk", vif_type="vhostuser", uplinks={"p": said})  # fits
    assert "kernel's packet socket" in latency["af_packet"] and "no bound" in latency["kernel"]
    (found,) = check_uplinks(RXQ, [_bridge("physblue")], CpuSet([1]), latency)
    assert found.status == Status.PASS and found.message.endswith(latency["af_packet"])


def test_the_host_says_what_each_uplink_is() -> None:
    polled = UplinkPort("ens1f0", (), "up-phys1", "net_af_packet_phys1,iface=ens1f0")
    assert uplink_kind(polled) == "polled: DPDK af_packet on ens1f0 (port up-phys1)"
    assert uplink_kind(UplinkPort("ens1f0")).startswith("kernel port ens1f0: not polled")
    doc = DataplaneDoc(backend="ovs-dpdk", vif_type="vhostuser", uplinks={"phys1": "x" * 256})
    assert doc.uplinks == {"phys1": "x" * 256}
