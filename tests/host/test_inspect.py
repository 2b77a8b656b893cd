"""inspect_host and the table/JSON output on the checked-in fixtures and broken roots."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.cpuset import CpuSet
from rtkvm.host.inspect import inspect_host, irqs_on, isolated_cpus, render_table
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import IrqSpec, tuned, write_tuned_2node
from rtkvm.testing.synthetic import small_no_smt, two_socket_smt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"
TUNED = FIXTURES / "tuned-2node"
THIS = FIXTURES / "this-machine"


def test_tuned_2node_report() -> None:
    r = inspect_host(HostFS(TUNED))
    assert r.online == CpuSet(range(8))
    assert not isinstance(r.topology, Unknown)
    assert [n.cpus for n in r.topology.nodes] == [CpuSet(range(4)), CpuSet(range(4, 8))]
    assert r.kernel.preempt_rt is True and r.kernel.rt_runtime_us == -1
    assert not isinstance(r.cmdline, Unknown)
    assert r.cmdline.isolcpus == CpuSet(range(2, 8))
    assert r.cmdline.isolcpus_flags == ("managed_irq", "domain")
    assert r.cmdline.irqaffinity == CpuSet([0, 1])
    assert isolated_cpus(r) == CpuSet(range(2, 8))
    assert isinstance(r.irqs.irqs, tuple)
    assert irqs_on(r.irqs.irqs, isolated_cpus(r)) == []
    assert r.power.governors == dict.fromkeys(range(8), "performance")
    assert r.process.cgroup_version == "v2" and r.process.rt_group_sched is False
    assert [(n.name, n.node) for n in r.topology.nics] == [
        ("br0", None),
        ("ens1f0", 1),
        ("lo", None),
    ]


def test_this_machine_report_matches_what_was_seen() -> None:
    r = inspect_host(HostFS(THIS))
    assert r.online == CpuSet([0, 1])
    assert r.kernel.preempt_rt is False
    assert r.kernel.preempt_rt_source == "/proc/version"
    assert r.kernel.isolated == CpuSet()
    assert isinstance(r.kernel.nohz_full, Unknown)
    assert r.kernel.rt_runtime_us == 950000
    assert r.process.cgroup_version == "hybrid"
    assert r.process.rt_group_sched is True
    assert isinstance(r.process.capabilities, frozenset)
    assert "CAP_SYS_NICE" in r.process.capabilities
    assert "CAP_SYS_RESOURCE" not in r.process.capabilities
    assert r.process.memlock_soft == r.process.memlock_hard == 8 * 1024 * 1024
    assert r.power.cpufreq is False
    assert r.process.kvm_present is True
    assert not isinstance(r.cmdline, Unknown)
    assert "firecracker" in " ".join(r.cmdline.init_args)
    assert not isinstance(r.topology, Unknown)
    assert {"eth0", "lo"} <= {n.name for n in r.topology.nics}


def test_table_has_every_section_and_readable_values() -> None:
    text = render_table(inspect_host(HostFS(TUNED)))
    for title in (
        "CPUs & topology",
        "NUMA & hugepages",
        "Kernel & cmdline",
        "RT knobs",
        "IRQs",
        "Power",
        "cgroups",
        "Process limits",
        "Devices & NICs",
    ):
        assert f"== {title}" in text
    assert "isolcpus:         2-7 (flags: managed_irq,domain)" in text
    assert "sched_rt_runtime_us: -1 (unlimited)" in text
    assert "on isolated CPUs: 0 touch 2-7" in text
    assert "hugepages 1G (all nodes): 8 free of 8" in text
    assert "NIC ens1f0: device, NUMA node 1" in text
    assert "memlock soft:     unlimited" in text


def test_irqs_on_isolated_cpus_are_listed(tmp_path: Path) -> None:
    write_tuned_2node(tmp_path)
    files = tuned(CpuSet(range(8)), CpuSet([0, 1]))
    irqs = {
        **files.irqs,
        200: IrqSpec("nvme0q3", CpuSet([3]), CpuSet([3])),
        201: IrqSpec("virtio-late", CpuSet(range(8)), None),
    }
    replace(files, irqs=irqs).write(tmp_path)
    r = inspect_host(HostFS(tmp_path))
    assert isinstance(r.irqs.irqs, tuple)
    assert [i.irq for i in irqs_on(r.irqs.irqs, isolated_cpus(r))] == [200, 201]
    text = render_table(r)
    assert "on isolated CPUs: 2 touch 2-7" in text
    assert "IRQ 200 nvme0q3: affinity 3, effective 3" in text
    assert "IRQ 201 virtio-late: affinity 0-7, effective unknown (" in text


def test_empty_root_reports_unknowns_without_crashing(tmp_path: Path) -> None:
    r = inspect_host(HostFS(tmp_path))
    assert isinstance(r.online, Unknown)
    assert isinstance(r.topology, Unknown)
    assert isinstance(r.cmdline, Unknown)
    text = render_table(r)
    assert "online CPUs:      unknown (/sys/devices/system/cpu/online: does not exist)" in text
    assert "cmdline:          unknown (/proc/cmdline: does not exist)" in text
    assert "/dev/kvm:         missing" in text


def test_topology_only_host_still_reports(tmp_path: Path) -> None:
    small_no_smt(4).write(tmp_path)
    r = inspect_host(HostFS(tmp_path))
    assert r.online == CpuSet(range(4))
    assert not isinstance(r.topology, Unknown)
    assert isinstance(r.kernel.rt_runtime_us, Unknown)
    assert "sched_rt_runtime_us: unknown (" in render_table(r)


def test_unreadable_topology_is_unknown_not_a_crash(tmp_path: Path) -> None:
    shutil.copytree(TUNED, tmp_path, dirs_exist_ok=True)
    (tmp_path / "sys/devices/system/cpu/cpu3/topology/core_id").unlink()
    r = inspect_host(HostFS(tmp_path))
    assert isinstance(r.topology, Unknown)
    assert r.topology.source.endswith("cpu3/topology/core_id")
    assert r.online == CpuSet(range(8))
    assert r.kernel.preempt_rt is True


@pytest.mark.parametrize("root", [TUNED, THIS])
def test_cli_json_is_the_report(root: Path) -> None:
    result = CliRunner().invoke(cli, ["host", "inspect", "--root", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {
        "root",
        "online",
        "topology",
        "kernel",
        "cmdline",
        "irqs",
        "power",
        "process",
    }
    report = inspect_host(HostFS(root))
    assert data["online"] == str(report.online)
    assert data["kernel"]["rt_runtime_us"] == report.kernel.rt_runtime_us


def test_cli_table_and_unknown_json(tmp_path: Path) -> None:
    table = CliRunner().invoke(cli, ["host", "inspect", "--root", str(TUNED)])
    assert table.exit_code == 0 and "== RT knobs" in table.output
    empty = CliRunner().invoke(cli, ["host", "inspect", "--root", str(tmp_path), "-f", "json"])
    assert empty.exit_code == 0
    assert json.loads(empty.output)["cmdline"] == {
        "unknown": "does not exist",
        "source": "/proc/cmdline",
    }


def test_cli_rejects_missing_root(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["host", "inspect", "--root", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_tuned_fixture_is_what_the_helper_writes(tmp_path: Path) -> None:
    """tests/fixtures/hosts/tuned-2node is regenerated by write_tuned_2node (+ .gitkeep)."""
    write_tuned_2node(tmp_path)

    def files(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): p.read_text()
            for p in root.rglob("*")
            if p.is_file() and p.name != ".gitkeep"
        }

    assert files(tmp_path) == files(TUNED)


def test_smt_siblings_are_summarised_on_big_hosts(tmp_path: Path) -> None:
    two_socket_smt().write(tmp_path)
    text = render_table(inspect_host(HostFS(tmp_path)))
    assert "cores:            16 (2 thread(s) per core)" in text
    assert "SMT siblings:     0,16 1,17 2,18 3,19 ... 15,31" in text
    assert "NIC ens1f0: device, NUMA node 1" in text
