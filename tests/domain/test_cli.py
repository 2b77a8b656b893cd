"""``rtkvm guest design`` and ``rtkvm guest audit`` through click and main()."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.guest import guest
from rtkvm.cli.main import main
from rtkvm.domain.xml import parse_domain
from rtkvm.errors import InputError
from rtkvm.testing.synthetic import SyntheticHost

RT_SPECS = [
    "-e", "hw:cpu_policy=dedicated",
    "-e", "hw:cpu_realtime=yes",
    "-e", "hw:cpu_realtime_mask=^0",
]  # fmt: skip


@pytest.fixture()
def host(tmp_path: Path) -> tuple[str, str]:
    """A one-socket, 8-core host tree and a plan file for it: (root, plan path)."""
    root = SyntheticHost(cores_per_socket=8, hugepages_2m_per_node=1024).write(tmp_path / "host")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"housekeeping": "0", "rt_vcpu": "1-7", "dataplane": ""}))
    return str(root), str(plan)


def test_design_from_extra_specs_prints_valid_xml_and_warnings(
    host: tuple[str, str], valid_domain: Callable[[str], None]
) -> None:
    root, plan = host
    args = ["design", *RT_SPECS, "-e", "quota:cpu_shares=10", "--vcpus", "2", "--ram", "1024"]
    args += ["--plan", plan, "--root", root, "--name", "vm1", "--kernel", "/k", "--accel", "tcg"]
    args += ["--vhost-user", "/run/vhu0.sock,mac=52:54:00:AA:00:01,queues=2"]
    args += ["--host-cannot-lock-memory", "--allow-unlocked-memory"]
    result = CliRunner().invoke(guest, args)
    assert result.exit_code == 0, result.output
    valid_domain(result.stdout)
    domain = parse_domain(result.stdout)
    assert (domain.name, domain.type, domain.vcpus) == ("vm1", "qemu", 2)
    assert domain.devices.interfaces[0].mac == "52:54:00:aa:00:01"
    assert domain.devices.interfaces[0].queues == 2
    assert domain.memory_backing is not None and not domain.memory_backing.locked
    assert "extra spec 'quota:cpu_shares' is not used" in result.stderr
    assert "warning: memory is NOT locked" in result.stderr


def test_design_from_nova_flavor_file_as_json(host: tuple[str, str], tmp_path: Path) -> None:
    root, plan = host
    flavor = tmp_path / "flavor.json"
    extra = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes"}
    extra["hw:emulator_threads_policy"] = "isolate"
    flavor.write_text(json.dumps({"name": "rt.2", "vcpus": 2, "ram": 2048, "extra_specs": extra}))
    args = ["design", "--flavor", str(flavor), "--plan", plan, "--root", root, "--name", "vm2"]
    args += ["--disk", "/img/vm2.qcow2", "--disk-format", "qcow2", "--allocated", "1", "-f", "json"]
    result = CliRunner().invoke(guest, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["placement"]["vcpu_pins"] == [[0, 2], [1, 3]]
    assert document["claimed"] == "2-4"
    assert document["placement"]["emulator_cpus"] == "4"
    assert parse_domain(document["xml"]).devices.disks[0].driver_type == "qcow2"


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        ([], "give the flavor"),
        (RT_SPECS, "also give the flavor's --vcpus N and --ram MIB"),
        ([*RT_SPECS, "--vcpus", "2", "--ram", "1024", "--vhost-user", "/s,speed=10"], "bad option"),
        ([*RT_SPECS, "--vcpus", "2", "--ram", "1024", "--allocated", "x"], "--allocated"),
        ([*RT_SPECS, "--vcpus", "9", "--ram", "1024"], "needs 9 RT pCPUs"),
        ([*RT_SPECS, "--vcpus", "2", "--ram", "1024", "--host-cannot-lock-memory"], "cannot lock"),
    ],
)
def test_design_refusals(host: tuple[str, str], extra_args: list[str], message: str) -> None:
    root, plan = host
    args = ["design", "--plan", plan, "--root", root, "--name", "v", "--kernel", "/k"]
    result = CliRunner().invoke(guest, args + extra_args)
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)


def test_main_turns_a_bad_spec_into_exit_2(
    host: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, plan = host
    args = ["guest", "design", "-e", "hw:cpu_realtime=yes", "--vcpus", "2", "--ram", "1024"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--plan", plan, "--root", root, "--name", "v", "--kernel", "/k"])
    assert info.value.code == 2
    assert (
        "Cannot set realtime policy in a non dedicated cpu pinning policy"
        in capsys.readouterr().err
    )


def test_audit_file_table_and_json(samples: Path, host: tuple[str, str]) -> None:
    root, _ = host
    nova = str(samples / "nova_rt.xml")
    table = CliRunner().invoke(guest, ["audit", nova, "--housekeeping", "0-3", "--root", root])
    assert table.exit_code == 0, table.output
    assert table.stdout.startswith(f"{nova}: rt-ready")
    assert "[fail] vcpu.priority" in table.stdout
    as_json = CliRunner().invoke(guest, ["audit", nova, "--housekeeping", "0-3", "-f", "json"])
    document = json.loads(as_json.stdout)
    assert document["verdict"] == "rt-ready"
    unchecked = {f["id"] for f in document["findings"] if "pass --root" in f["message"]}
    assert unchecked == {"numa.local", "vcpu.quiet-sibling"}  # no --root: not checked
    assert {f["status"] for f in document["findings"] if f["id"] in unchecked} == {"skip"}


def test_audit_exit_1_when_not_rt_ready(samples: Path, host: tuple[str, str]) -> None:
    _, plan = host
    result = CliRunner().invoke(guest, ["audit", str(samples / "kubevirt_rt.xml"), "--plan", plan])
    assert result.exit_code == 1
    assert "not rt-ready" in result.stdout.splitlines()[0]


def test_audit_defined_domain_through_libvirt(host: tuple[str, str]) -> None:
    pytest.importorskip("libvirt")
    root, _ = host
    args = [
        "audit",
        "--domain",
        "test",
        "--connect",
        "test:///default",
        "--root",
        root,
        "-f",
        "json",
    ]
    result = CliRunner().invoke(guest, args)
    assert result.exit_code == 1, result.output  # libvirt's test domain is no RT guest
    document = json.loads(result.stdout)
    assert document["subject"] == "domain test"
    missing = CliRunner().invoke(
        guest, ["audit", "--domain", "nope", "--connect", "test:///default"]
    )
    assert isinstance(missing.exception, InputError)
    assert "nope" in str(missing.exception)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit"], "give either DOMAIN.xml or --domain NAME"),
        (["audit", "--housekeeping", "0", "--plan", "{plan}", "{xml}"], "not both"),
        (["audit", "--housekeeping", "0-", "{xml}"], "--housekeeping"),
    ],
)
def test_audit_refusals(
    args: list[str], message: str, samples: Path, host: tuple[str, str]
) -> None:
    _, plan = host
    filled = [a.format(plan=plan, xml=samples / "nova_rt.xml") for a in args]
    result = CliRunner().invoke(guest, filled)
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)
