"""Pre-flight detection of this machine's limits on a fake host tree, and log diagnosis."""

from __future__ import annotations

from pathlib import Path

from rtkvm.dataplane.quirks import cgroup_v1_cpu_path, diagnose_log, iova_mode, preflight
from rtkvm.dataplane.settings import load_settings
from rtkvm.findings import Status
from rtkvm.hostfs import HostFS

from .fakes import write_host_file

SETTINGS = load_settings()


def _host(root: Path, *, runtime: str = "950000", budget: str = "950000") -> HostFS:
    for path in vars(SETTINGS.binaries).values():
        write_host_file(root, path, "")
    for driver in SETTINGS.required_drivers:
        write_host_file(root, f"{SETTINGS.drivers_dir}/{driver.file}", "")
    write_host_file(root, "/proc/sys/kernel/sched_rt_runtime_us", runtime + "\n")
    write_host_file(root, "/proc/sys/kernel/sched_rt_period_us", "1000000\n")
    write_host_file(root, "/proc/self/cgroup", "4:memory:/x\n1:cpu,cpuacct:/rtkvm\n0::/\n")
    write_host_file(root, "/sys/fs/cgroup/cpu/rtkvm/cpu.rt_runtime_us", budget + "\n")
    write_host_file(root, "/proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n")
    return HostFS(root)


def _status(fs: HostFS) -> dict[str, Status]:
    return {f.id: f.status for f in preflight(fs, SETTINGS).findings}


def test_ready_host(tmp_path: Path) -> None:
    report = preflight(_host(tmp_path), SETTINGS)
    assert report.ok, report.render_table()


def test_missing_mempool_driver_names_the_package(tmp_path: Path) -> None:
    fs = _host(tmp_path)
    (tmp_path / SETTINGS.drivers_dir.lstrip("/") / "librte_mempool_ring.so.23").unlink()
    report = preflight(fs, SETTINGS)
    assert not report.ok
    assert "apt-get install librte-mempool-ring23" in report.render_table()


def test_rt_throttling_off_blocks_a_fifo_pmd(tmp_path: Path) -> None:
    status = _status(_host(tmp_path, runtime="-1"))
    assert status["dataplane.rt-throttling"] is Status.FAIL


def test_cgroup_without_rt_budget(tmp_path: Path) -> None:
    status = _status(_host(tmp_path, budget="0"))
    assert status["dataplane.rt-cgroup"] is Status.FAIL


def test_cgroup_paths() -> None:
    assert cgroup_v1_cpu_path("2:cpuacct:/\n1:cpu:/\n0::/\n") == "/"
    assert cgroup_v1_cpu_path("0::/user.slice\n") is None


def test_log_diagnosis() -> None:
    log = (
        "2026|00012|dpdk|INFO|EAL: Selected IOVA mode 'VA'\n"
        "2026|00088|netdev_dpdk|ERR|Failed to create memory pool for netdev vhu1, with MTU "
        "1500 on socket 0: Invalid argument\n"
    )
    problems = diagnose_log(log)
    assert len(problems) == 1 and "librte-mempool-ring23" in problems[0]
    assert iova_mode(log) == "VA"
    assert diagnose_log("EAL: No free 1048576 kB hugepages reported on node 0\n") == []
