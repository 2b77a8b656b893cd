"""``rtkvm guest create --network/--ip`` (dry run, on a saved switch layout), the guest
options of ``rtkvm net rtt``, and unplugging every port of a guest."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner
from lxml import etree

from rtkvm.cli.main import cli
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import compute_layout, resolve_cpus
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import save_layout
from rtkvm.errors import GuestError
from rtkvm.guest import lifecycle
from rtkvm.hostfs import HostFS
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink
from rtkvm.testing.guests import make_plan


def _layout(socket_dir: str) -> object:
    cpus = resolve_cpus(
        make_plan("0", "1", "2-3"), online=CpuSet.parse("0-3"), node_of_cpu={c: 0 for c in range(4)}
    )
    return compute_layout(
        load_settings(),
        cpus,
        node_of_cpu={c: 0 for c in range(4)},
        nodes=[0],
        networks=[UnmanagedNetwork("blue", "physblue"), UnmanagedNetwork("red", "physred")],
        wiring=HostWiring((Uplink("physblue", "ens1"), Uplink("physred", "ens2"))),
        socket_dir=socket_dir,
    )


@pytest.fixture
def image(tmp_path: Path) -> Path:
    out = tmp_path / "image"
    out.mkdir()
    (out / "vmlinuz").write_bytes(b"k")
    (out / "initramfs.cpio.gz").write_bytes(b"i")
    (out / "manifest.json").write_text(json.dumps({"kernel_release": "6.1.0-56-rt-amd64"}))
    return out


def _create(tmp_path: Path, image: Path, *extra: str) -> tuple[int, str]:
    args = [
        "guest", "create", "g1", "--image", str(image), "--guest-dir", str(tmp_path / "g"),
        "--accel", "tcg", "--housekeeping", "0", "--rt-cpus", "1", "--dry-run", *extra,
    ]  # fmt: skip
    done = CliRunner().invoke(cli, args)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.exit_code, done.output


def test_dry_run_names_the_switch_socket_and_the_address(tmp_path: Path, image: Path) -> None:
    rundir = tmp_path / "run"
    save_layout(rundir, _layout("/run/rtkvm-test/vhost"))  # type: ignore[arg-type]
    code, out = _create(
        tmp_path, image, "--network", "red", "--ip", "10.77.0.13/24", "--net-rundir", str(rundir)
    )
    assert code == 0, out
    xml = out[out.index("<domain") :]
    root = etree.fromstring(xml.encode())
    source = root.find("./devices/interface[@type='vhostuser']/source")
    assert source is not None and source.get("path") == "/run/rtkvm-test/vhost/g1.0.sock"
    assert "rtkvm.ip=10.77.0.13/24" in (root.findtext("./os/cmdline") or "")
    assert "plugged" not in out  # a dry run plugs nothing


def test_unknown_network_and_ip_without_network_are_refused(tmp_path: Path, image: Path) -> None:
    rundir = tmp_path / "run"
    save_layout(rundir, _layout("/run/rtkvm-test/vhost"))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="no network 'green'"):
        _create(tmp_path, image, "--network", "green", "--net-rundir", str(rundir))
    with pytest.raises(Exception, match="--ip needs a NIC"):
        _create(tmp_path, image, "--ip", "10.77.0.13/24")
    with pytest.raises(Exception, match="no rtkvm switch"):
        _create(tmp_path, image, "--network", "red", "--net-rundir", str(tmp_path / "none"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server-netns", "a"], "exactly one client"),
        (["--client-netns", "a", "--client-guest", "g"], "exactly one client"),
        (["--client-guest", "g"], "exactly one server"),
        (["--client-guest", "g", "--server-guest", "h", "--server-netns", "n"], "exactly one"),
    ],
)
def test_rtt_needs_one_client_and_one_server(args: list[str], message: str) -> None:
    done = CliRunner().invoke(cli, ["net", "rtt", "--server-ip", "10.0.0.1", *args])
    assert done.exception is not None and message in str(done.exception)


class PortsRunner:
    """Plays ovs-vsctl list-ports/del-port over a table of bridge -> ports."""

    def __init__(self, ports: dict[str, list[str]]) -> None:
        self.ports = ports
        self.calls: list[list[str]] = []

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        cmd = [a for a in args if not a.startswith("--")]
        self.calls.append(cmd)
        if cmd[1] == "list-ports":
            return "\n".join(self.ports.get(cmd[2], [])) + "\n"
        if cmd[1] == "del-port":
            self.ports[cmd[2]].remove(cmd[3])
        return ""


def test_unplug_guest_removes_only_that_guests_ports(tmp_path: Path) -> None:
    runner = PortsRunner(
        {
            "rt-physblue": ["ens1", "vhu-g1-0", "vhu-g12-0", "vhu-g2-0"],
            "rt-physred": ["ens2", "vhu-g1-1"],
        }
    )
    ovs = OvsDpdk(load_settings(), tmp_path, HostFS(tmp_path), runner)
    backend = OvsDpdkBackend(ovs, _layout(str(PurePosixPath("/run/x"))))  # type: ignore[arg-type]
    assert sorted(backend.unplug_guest("g1")) == ["vhu-g1-0", "vhu-g1-1"]
    assert runner.ports == {
        "rt-physblue": ["ens1", "vhu-g12-0", "vhu-g2-0"],
        "rt-physred": ["ens2"],
    }
    assert backend.unplug_guest("g1") == []


def test_create_never_plugs_for_a_name_that_exists(tmp_path: Path, image: Path) -> None:
    """The test driver's domain 'test' exists: refused before the switch is touched."""
    rundir = tmp_path / "run"
    save_layout(rundir, _layout("/run/rtkvm-test/vhost"))  # type: ignore[arg-type]
    args = [
        "guest", "create", "test", "--image", str(image), "--guest-dir", str(tmp_path / "g"),
        "--accel", "tcg", "--network", "blue", "--net-rundir", str(rundir),
        "--uri", "test:///default",
    ]  # fmt: skip
    done = CliRunner().invoke(cli, args)
    assert isinstance(done.exception, GuestError) and "already exists" in str(done.exception)
    with lifecycle.connect("test:///default") as conn:
        assert lifecycle.exists(conn, "test") and not lifecycle.exists(conn, "rtk-nope")
