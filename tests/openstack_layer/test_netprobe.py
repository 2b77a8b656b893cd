"""Round trips and pings between Nova probe servers: role images, consoles, clean-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtkvm.errors import GuestError, MeasureError
from rtkvm.net.model import UnmanagedNetwork
from rtkvm.openstack.netprobe import (
    NOVA_CONSOLE_BYTES,
    check_samples,
    ping_from,
    probe_base,
    round_trip,
)
from rtkvm.openstack.networks import sync_networks
from rtkvm.openstack.servers import MadeServer

from .test_networks_servers import FakeCloud

PROBE_CMDLINE = (
    'console=ttyS0 quiet panic=-1 isolcpus=1 rtkvm.cyclictest="-m -p 90 -a 1 -t 1 -l 1000" '
    "noirqdebug"
)
READY = "RTKVM-READY kernel=6.1.0-rt realtime=1 cpus=2\n"
GOLDEN = Path(__file__).parents[1] / "net" / "data"
SUMMARY = (GOLDEN / "sockperf_pingpong.txt").read_text()
FULL_LOG = (GOLDEN / "sockperf_full.csv").read_text()  # a real run: 549 samples


class NetCloud(FakeCloud):
    """FakeCloud with Glance's images (create, upload, delete) and Nova's console output,
    which each server's image command line decides."""

    def __init__(self, consoles: dict[str, str]) -> None:
        super().__init__()
        self.images: dict[str, dict[str, Any]] = {
            "p1": {"id": "p1", "name": "rtkvm-probe", "status": "active", "kernel_id": "k1",
                   "ramdisk_id": "r1", "os_command_line": PROBE_CMDLINE},
        }  # fmt: skip
        self.consoles = consoles
        """A word of the command line -> what a server booted with it prints."""
        self.uploads: list[str] = []
        self.bodies: list[dict[str, Any]] = []

    def upload(self, service: str, path: str, data: bytes, *, what: str) -> None:
        self.uploads.append(path.split("/")[3])

    def call(self, service: str, method: str, path: str, **kw: Any) -> Any:
        if path.startswith("/v2/images"):
            return self._images(method, path, kw.get("json"))
        if method == "POST" and path.endswith("/action"):
            sid = path.split("/")[2]
            cmdline = self.images[self.servers[sid]["image"]]["os_command_line"]
            return {"output": "".join(t for w, t in self.consoles.items() if w in cmdline)}
        if method == "POST" and path == "/servers":
            self.calls.append((method, path))
            self.bodies.append(kw["json"])
            answer = super()._servers(method, path, kw["json"])
            made = self.servers[answer["server"]["id"]]
            made["image"] = kw["json"]["server"]["imageRef"]
            apart = kw["json"].get("os:scheduler_hints", {}).get("different_host", [])
            if any(self.servers[sid]["OS-EXT-SRV-ATTR:host"] == "node1" for sid in apart):
                made["OS-EXT-SRV-ATTR:host"] = "node2"  # DifferentHostFilter's choice
            return answer
        return super().call(service, method, path, **kw)

    def _images(self, method: str, path: str, body: Any) -> Any:
        if method == "GET" and "?name=" in path:
            name = path.split("?name=")[1]
            return {"images": [i for i in self.images.values() if i["name"] == name]}
        if method == "GET":
            return {"images": list(self.images.values())}
        if method == "POST":
            image = {"id": f"i{len(self.images)}", "status": "active", **body}
            self.images[image["id"]] = image
            return image
        self.images.pop(path.rsplit("/", 1)[1], None)
        return None


def _cloud(consoles: dict[str, str]) -> Any:
    """A NetCloud with rtkvm's network blue (typed Any: it stands in for a CloudSession)."""
    cloud = NetCloud(consoles)
    sync_networks(cloud, [UnmanagedNetwork("blue", "physblue")])
    return cloud


SERVING = {
    "rtkvm.sockperf_server=10.78.0.1": READY + "RTKVM-NET ip=10.78.0.1/24\n"
    "RTKVM-SOCKPERF-SERVER rc=0\n",
    "rtkvm.wait=10.78.0.1": READY + "RTKVM-NET ip=10.78.0.2/24\nRTKVM-WAIT ok\n"
    "RTKVM-SOCKPERF-BEGIN args=ping-pong\n" + SUMMARY + "RTKVM-SOCKPERF-END rc=0\n"
    "RTKVM-FULLLOG-BEGIN\n" + FULL_LOG + "RTKVM-FULLLOG-END\n",
}


def test_round_trip_boots_a_server_and_a_client_from_their_own_images_and_cleans_up() -> None:
    cloud = _cloud(SERVING)
    seen: list[list[MadeServer]] = []
    report = round_trip(
        cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
        server_address="10.78.0.1/24", client_address="10.78.0.2/24", seconds=1, mps=1000,
        during=seen.append, warnings=("TCG",),
    )  # fmt: skip
    assert report.samples == 549 and report.warnings == ("TCG",)
    assert "10.78.0.1" in report.path and "blue" in report.path
    assert [m.name for m in seen[0]] == ["rtkvm-rtt-server", "rtkvm-rtt-client"]
    made = [i for i in cloud.calls if i == ("POST", "/servers")]
    assert len(made) == 2
    # each role is its own image on the probe's kernel and ramdisk, without its cyclictest
    assert len(cloud.uploads) == 2
    assert list(cloud.images) == ["p1"]  # the role images are deleted again
    assert cloud.servers == {} and cloud.ports == {}  # servers and their ports too
    assert report.path == (
        "Nova server rtkvm-rtt-client on node1 -> rtkvm-rtt-server on node1 (10.78.0.1) over blue"
    )
    assert not any("os:scheduler_hints" in body for body in cloud.bodies)


def test_apart_asks_nova_for_another_host_for_the_client_and_says_both() -> None:
    cloud = _cloud(SERVING)
    report = round_trip(
        cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
        server_address="10.78.0.1/24", client_address="10.78.0.2/24", seconds=1, mps=1000,
        apart=True,
    )  # fmt: skip
    server_body, client_body = cloud.bodies
    assert "os:scheduler_hints" not in server_body
    [server_id] = client_body["os:scheduler_hints"]["different_host"]
    assert report.path == (
        "Nova server rtkvm-rtt-client on node2 -> rtkvm-rtt-server on node1 (10.78.0.1) over blue"
    )
    assert cloud.servers == {} and server_id not in cloud.servers


def test_a_console_past_what_nova_keeps_is_read_without_its_boot_line() -> None:
    """Nova returns the last 100 KiB of a console: a long run pushes the boot line out
    (stop 31's CI waited 303 s for an end marker that was there)."""
    client = SERVING["rtkvm.wait=10.78.0.1"]
    head, tail = client.split("RTKVM-SOCKPERF-BEGIN", 1)
    noise = "[   12.345678] kernel chatter\n"
    fill = (NOVA_CONSOLE_BYTES - len(client.encode())) // len(noise) + 1
    body = head + noise * fill + "RTKVM-SOCKPERF-BEGIN" + tail
    cut = body.encode()[-NOVA_CONSOLE_BYTES:].decode()  # the boot line's start is cut off
    assert READY.strip() not in cut and "RTKVM-WAIT ok" in cut
    cloud = _cloud({**SERVING, "rtkvm.wait=10.78.0.1": cut})
    report = round_trip(
        cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
        server_address="10.78.0.1/24", client_address="10.78.0.2/24", seconds=1, mps=500,
    )  # fmt: skip
    assert report.samples == 549


def test_role_images_keep_the_kernel_and_drop_the_cyclictest_run() -> None:
    base = probe_base(_cloud({}), "rtkvm-probe")
    assert (base.kernel_id, base.ramdisk_id) == ("k1", "r1")
    assert "cyclictest" not in base.cmdline and "-l 1000" not in base.cmdline
    assert base.cmdline == "console=ttyS0 quiet panic=-1 isolcpus=1 noirqdebug"
    with pytest.raises(GuestError, match="rtkvm openstack image upload"):
        probe_base(_cloud({}), "missing")


def test_a_client_that_cannot_reach_the_server_fails_and_leaves_nothing() -> None:
    consoles = dict(SERVING)
    consoles["rtkvm.wait=10.78.0.1"] = READY + "RTKVM-NET ip=10.78.0.2/24\nRTKVM-WAIT timeout\n"
    cloud = _cloud(consoles)
    with pytest.raises(MeasureError, match=r"cannot reach 10\.78\.0\.1 on blue"):
        round_trip(cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
                   server_address="10.78.0.1/24", client_address="10.78.0.2/24",
                   seconds=1)  # fmt: skip
    assert list(cloud.images) == ["p1"] and cloud.servers == {} and cloud.ports == {}


def test_ping_says_whether_the_target_answered_after_the_control_answered() -> None:
    begin = "RTKVM-PING-BEGIN target=10.78.0.254\n"
    answered = {"rtkvm.ping=10.78.0.254": READY + "RTKVM-NET ip=10.78.0.3/24\n" + begin
                + "3 packets received\nRTKVM-PING-END rc=0\n"}  # fmt: skip
    done = ping_from(_cloud(answered), name="p", network="blue", flavor="rt.small",
                     probe_image="rtkvm-probe", address="10.78.0.3/24",
                     target="10.78.0.254")  # fmt: skip
    assert done.answered and "3 packets received" in done.output
    isolated = {"rtkvm.wait=10.78.0.253": READY + "RTKVM-NET ip=10.78.0.5/24\nRTKVM-WAIT ok\n"
                + begin + "0 packets received\nRTKVM-PING-END rc=1\n"}  # fmt: skip
    done = ping_from(_cloud(isolated), name="r", network="blue", flavor="rt.small",
                     probe_image="rtkvm-probe", address="10.78.0.5/24", target="10.78.0.254",
                     reach_first="10.78.0.253")  # fmt: skip
    assert not done.answered
    dead = {"rtkvm.wait=10.78.0.253": READY + "RTKVM-NET ip=10.78.0.5/24\nRTKVM-WAIT timeout\n"
            "RTKVM-PING-BEGIN target=10.78.0.254\nRTKVM-PING-END rc=1\n"}  # fmt: skip
    with pytest.raises(MeasureError, match=r"never reached 10\.78\.0\.253"):
        ping_from(_cloud(dead), name="r", network="blue", flavor="rt.small",
                  probe_image="rtkvm-probe", address="10.78.0.5/24", target="10.78.0.254",
                  reach_first="10.78.0.253")  # fmt: skip


def test_a_run_longer_than_nova_s_console_keeps_is_refused_before_anything_boots() -> None:
    check_samples(3, 500)
    with pytest.raises(MeasureError, match="at most 1745"):
        check_samples(3, 1000)  # 3,000 lines of ~41 bytes: more than Nova's 100 KiB
