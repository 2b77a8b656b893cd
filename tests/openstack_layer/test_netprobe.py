"""Round trips and pings between Nova probe servers: role images, consoles, clean-up."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from rtkvm.errors import GuestError, MeasureError
from rtkvm.image.build import load_image_spec
from rtkvm.net.model import UnmanagedNetwork
from rtkvm.openstack.netprobe import (
    MAX_SAMPLES,
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
FULL_LOG = GOLDEN / "sockperf_full.csv"  # a real run: 549 samples


def _histogram(log: Path) -> str:
    """What the probe prints of a full log (``rtkvm.rttlog=hist``): the image's own awk
    program, run by this host's awk (busybox's in the guest)."""
    program = load_image_spec().rtt_histogram_awk
    done = subprocess.run(["awk", program, str(log)], capture_output=True, text=True, check=True)
    return done.stdout


HISTOGRAM = _histogram(FULL_LOG)


class NetCloud(FakeCloud):
    """FakeCloud with Glance's images (create, upload, delete) and Nova's console output,
    which each server's image command line decides."""

    def __init__(self, consoles: dict[str, Any]) -> None:
        super().__init__()
        self.images: dict[str, dict[str, Any]] = {
            "p1": {"id": "p1", "name": "rtkvm-probe", "status": "active", "kernel_id": "k1",
                   "ramdisk_id": "r1", "os_command_line": PROBE_CMDLINE},
        }  # fmt: skip
        self.consoles = consoles
        """A word of the command line -> what a server booted with it prints (a list: what
        Nova returns at each read, the last one from then on)."""
        self.uploads: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.image_bodies: list[dict[str, Any]] = []

    def upload(self, service: str, path: str, data: bytes, *, what: str) -> None:
        self.uploads.append(path.split("/")[3])

    def call(self, service: str, method: str, path: str, **kw: Any) -> Any:
        if path.startswith("/v2/images"):
            return self._images(method, path, kw.get("json"))
        if method == "POST" and path.endswith("/action"):
            sid = path.split("/")[2]
            cmdline = self.images[self.servers[sid]["image"]]["os_command_line"]
            return {"output": "".join(self._console(w) for w in self.consoles if w in cmdline)}
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

    def _console(self, word: str) -> str:
        said = self.consoles[word]
        if isinstance(said, list):
            return str(said.pop(0) if len(said) > 1 else said[0])
        return said

    def _images(self, method: str, path: str, body: Any) -> Any:
        if method == "GET" and "?name=" in path:
            name = path.split("?name=")[1]
            return {"images": [i for i in self.images.values() if i["name"] == name]}
        if method == "GET":
            return {"images": list(self.images.values())}
        if method == "POST":
            self.image_bodies.append(body)
            image = {"id": f"i{len(self.images)}", "status": "active", **body}
            self.images[image["id"]] = image
            return image
        self.images.pop(path.rsplit("/", 1)[1], None)
        return None


def _cloud(consoles: dict[str, Any]) -> Any:
    """A NetCloud with rtkvm's network blue (typed Any: it stands in for a CloudSession)."""
    cloud = NetCloud(consoles)
    sync_networks(cloud, [UnmanagedNetwork("blue", "physblue")])
    return cloud


SERVING = {
    "rtkvm.sockperf_server=10.78.0.1": READY + "RTKVM-NET ip=10.78.0.1/24\n"
    "RTKVM-SOCKPERF-SERVER rc=0\n",
    "rtkvm.wait=10.78.0.1": READY + "RTKVM-NET ip=10.78.0.2/24\nRTKVM-WAIT ok\n"
    "RTKVM-SOCKPERF-BEGIN args=ping-pong\n" + SUMMARY + "RTKVM-SOCKPERF-END rc=0\n"
    "RTKVM-RTTHIST-BEGIN\n" + HISTOGRAM + "RTKVM-RTTHIST-END rc=0\n",
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
    # the samples, rounded to 0.1 µs, agree with sockperf's own min and max
    assert (report.min_us, report.max_us) == (12.1, 27.3)
    server_role, client_role = (body["os_command_line"] for body in cloud.image_bodies)
    assert "rtkvm.rttlog=hist" in client_role and "rtkvm.rttlog" not in server_role
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


def test_the_histogram_is_one_line_per_distinct_round_trip_in_tenths_of_a_microsecond() -> None:
    lines = HISTOGRAM.splitlines()
    assert lines[0] == "unit_us 0.1"
    pairs = [tuple(map(int, line.split())) for line in lines[1:]]
    assert sum(count for _, count in pairs) == 549  # every row of the full log, once
    assert len(pairs) < 549 and min(pairs)[0] == 121 and max(pairs)[0] == 273
    # the summary lines and headers of the log are not rows
    assert len(HISTOGRAM.encode()) < len(FULL_LOG.read_bytes()) // 4


def test_a_console_that_lost_the_run_s_start_is_said_not_misread() -> None:
    """A histogram longer than Nova keeps (TCG's round trips spread widely) pushes the
    sockperf block out of the console's last 100 KiB."""
    client = SERVING["rtkvm.wait=10.78.0.1"]
    waited = client[: client.index("RTKVM-SOCKPERF-BEGIN")]
    wide = "".join(f"{value} 1\n" for value in range(100_000, 120_000))
    ran = client[: client.index("unit_us")] + "unit_us 0.1\n" + wide + "RTKVM-RTTHIST-END rc=0\n"
    cut = ran.encode()[-NOVA_CONSOLE_BYTES:].decode()
    assert "RTKVM-SOCKPERF-BEGIN" not in cut
    cloud = _cloud({**SERVING, "rtkvm.wait=10.78.0.1": [waited, cut]})
    with pytest.raises(MeasureError, match="overran what Nova keeps of a console"):
        round_trip(cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
                   server_address="10.78.0.1/24", client_address="10.78.0.2/24",
                   seconds=1)  # fmt: skip
    assert list(cloud.images) == ["p1"] and cloud.servers == {} and cloud.ports == {}


def test_a_histogram_missing_round_trips_is_refused() -> None:
    client = SERVING["rtkvm.wait=10.78.0.1"]
    first = HISTOGRAM.splitlines()[1]
    cloud = _cloud({**SERVING, "rtkvm.wait=10.78.0.1": client.replace(first + "\n", "", 1)})
    with pytest.raises(MeasureError, match="sockperf counted 549: the console lost part of it"):
        round_trip(cloud, network="blue", flavor="rt.small", probe_image="rtkvm-probe",
                   server_address="10.78.0.1/24", client_address="10.78.0.2/24",
                   seconds=1)  # fmt: skip


def test_a_run_longer_than_the_probe_can_hold_is_refused_before_anything_boots() -> None:
    check_samples(11, 1000)
    check_samples(1000, 1000)
    with pytest.raises(MeasureError, match=f"at most {MAX_SAMPLES}"):
        check_samples(3600, 1000)
