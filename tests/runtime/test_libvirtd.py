"""runtime_up on a fake root: accounts, directories, qemu.conf, daemons, idempotence."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from rtkvm.errors import RuntimeSetupError
from rtkvm.hostfs import HostFS
from rtkvm.runtime.libvirtd import (
    LIBVIRT_SOCKET,
    QEMU_CONF,
    hugetlbfs_unseen,
    restart_libvirtd,
    running_domains,
    runtime_findings,
    runtime_up,
)


class FakeSystem:
    """groupadd/useradd edit the fake /etc files; daemons write a pidfile, comm and socket."""

    def __init__(self, root: Path, libvirtd_works: bool = True) -> None:
        self.root = root
        self.calls: list[list[str]] = []
        self.libvirtd_works = libvirtd_works
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        name = argv[-1]
        if argv[0] == "groupadd":
            with (self.root / "etc/group").open("a") as f:
                f.write(f"{name}:x:999:\n")
        elif argv[0] == "useradd":
            with (self.root / "etc/passwd").open("a") as f:
                f.write(f"{name}:x:999:999::/:/usr/sbin/nologin\n")
        elif argv[0] in ("virtlogd", "libvirtd"):
            if argv[0] == "libvirtd" and not self.libvirtd_works:
                return subprocess.CompletedProcess(argv, 0, "", "")
            pid = 4000 + len(self.calls)
            (self.root / f"var/run/{argv[0]}.pid").write_text(f"{pid}\n")
            (self.root / f"proc/{pid}").mkdir(parents=True, exist_ok=True)
            (self.root / f"proc/{pid}/comm").write_text(f"{argv[0]}\n")
            if argv[0] == "libvirtd":
                (self.root / LIBVIRT_SOCKET.lstrip("/")).touch()
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_up_from_scratch_then_nothing_to_do(tmp_path: Path) -> None:
    system = FakeSystem(tmp_path)
    fs = HostFS(tmp_path, writable=True)
    first = runtime_up(fs, {"rt_group_sched"}, run=system, connect=lambda: None)
    commands = [c[0] for c in system.calls]
    assert commands.count("groupadd") == 3 and commands.count("useradd") == 1
    assert commands[-2:] == ["virtlogd", "libvirtd"]
    assert (tmp_path / "var/log/libvirt/qemu").is_dir()
    conf = (tmp_path / QEMU_CONF.lstrip("/")).read_text()
    assert 'cgroup_controllers = ["cpuset"' in conf
    assert any("wrote /etc/libvirt/qemu.conf" in a for a in first.actions)

    before = len(system.calls)
    second = runtime_up(fs, {"rt_group_sched"}, run=system, connect=lambda: None)
    assert second.actions == [] and len(system.calls) == before


def test_libvirtd_that_dies_is_reported_with_where_to_look(tmp_path: Path) -> None:
    system = FakeSystem(tmp_path, libvirtd_works=False)
    fs = HostFS(tmp_path, writable=True)
    with pytest.raises(RuntimeSetupError, match=r"libvirtd\.log"):
        runtime_up(fs, set(), run=system, connect=lambda: None)


def test_conf_change_with_running_domain_warns_instead_of_restarting(tmp_path: Path) -> None:
    system = FakeSystem(tmp_path)
    fs = HostFS(tmp_path, writable=True)
    runtime_up(fs, set(), run=system, connect=lambda: None)
    qemu_pid_dir = tmp_path / "var/run/libvirt/qemu"
    qemu_pid_dir.mkdir(parents=True)
    (qemu_pid_dir / "g1.pid").write_text(str(os.getpid()))
    (tmp_path / f"proc/{os.getpid()}").mkdir(parents=True)
    result = runtime_up(fs, {"rt_group_sched"}, run=system, connect=lambda: None)
    assert any("g1" in w and "not restarted" in w for w in result.warnings)


def test_status_findings_before_and_after_up(tmp_path: Path) -> None:
    system = FakeSystem(tmp_path)
    fs = HostFS(tmp_path, writable=True)
    before = {f.id: f.status.value for f in runtime_findings(fs, {"rt_group_sched"})}
    assert before == {
        "runtime.virtlogd": "fail",
        "runtime.libvirtd": "fail",
        "runtime.qemu_conf": "fail",
    }
    runtime_up(fs, {"rt_group_sched"}, run=system, connect=lambda: None)
    after = runtime_findings(fs, {"rt_group_sched"})
    assert all(f.status.value == "pass" for f in after)
    # a quirk that appears later makes qemu.conf out of date again
    assert not all(f.status.value == "pass" for f in runtime_findings(fs, set()))


def test_up_records_what_it_created_and_clean_removes_exactly_that(tmp_path: Path) -> None:
    """Accounts, libvirt directories, the original qemu.conf and the daemons are registered,
    so that `rtkvm host clean --all` can undo them; what existed before is not."""
    from rtkvm.footprint import Footprint
    from rtkvm.hostclean import plan_clean, run_clean
    from rtkvm.testing.clean import FakeSeams

    (tmp_path / "var/log/libvirt").mkdir(parents=True)  # existed before rtkvm
    (tmp_path / "etc/libvirt").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu.conf").write_text("# Debian's qemu.conf\n")
    system = FakeSystem(tmp_path)
    runtime_up(
        HostFS(tmp_path, writable=True), {"rt_group_sched"}, run=system, connect=lambda: None
    )
    fp = Footprint(tmp_path)
    accounts = {r["name"] for r in fp.registered("account")}
    assert accounts == {"group:libvirt-qemu", "group:kvm", "group:libvirt", "user:libvirt-qemu"}
    dirs = [r["name"] for r in fp.registered("directory")]
    assert "/var/log/libvirt/qemu" in dirs and "/var/log/libvirt" not in dirs
    assert fp.lookup("original_file", QEMU_CONF) == {
        "name": QEMU_CONF,
        "content": "# Debian's qemu.conf\n",
    }
    assert {r["name"] for r in fp.registered("daemon")} == {"virtlogd", "libvirtd"}

    seams = FakeSeams()
    result = run_clean(plan_clean(fp, seams, everything=True))
    assert result.problems == []
    assert (tmp_path / "etc/libvirt/qemu.conf").read_text() == "# Debian's qemu.conf\n"
    assert (tmp_path / "var/log/libvirt").is_dir()
    assert not (tmp_path / "var/log/libvirt/qemu").exists()
    assert not (tmp_path / "var/lib/libvirt").exists()
    assert sorted(seams.calls) == sorted(
        [
            ("stop_daemon", "virtlogd", "/var/run/virtlogd.pid"),
            ("stop_daemon", "libvirtd", "/var/run/libvirtd.pid"),
            ("delete_account", "user", "libvirt-qemu"),
            ("delete_account", "group", "libvirt-qemu"),
            ("delete_account", "group", "kvm"),
            ("delete_account", "group", "libvirt"),
        ]
    )
    users_first = [c for c in seams.calls if c[0] == "delete_account"]
    assert users_first[0] == ("delete_account", "user", "libvirt-qemu")
    assert plan_clean(fp, seams, everything=True) == []  # nothing left, not even the registry


def test_libvirt_s_driver_lock_is_not_a_running_domain(tmp_path: Path) -> None:
    """/var/run/libvirt/qemu/driver.pid names libvirtd itself: a change then restarts it."""
    system = FakeSystem(tmp_path)
    fs = HostFS(tmp_path, writable=True)
    runtime_up(fs, set(), run=system, connect=lambda: None)
    qemu_pid_dir = tmp_path / "var/run/libvirt/qemu"
    qemu_pid_dir.mkdir(parents=True)
    libvirtd_pid = (tmp_path / "var/run/libvirtd.pid").read_text().strip()
    (qemu_pid_dir / "driver.pid").write_text(libvirtd_pid)
    assert running_domains(fs) == []
    (qemu_pid_dir / "g1.pid").write_text(str(os.getpid()))
    (tmp_path / f"proc/{os.getpid()}").mkdir(parents=True)
    assert running_domains(fs) == ["g1"]
    refused = restart_libvirtd(fs, "hugetlbfs was mounted", run=system)
    assert refused.actions == [] and "g1" in refused.warnings[0]


def _fake_kill(root: Path) -> Callable[[int, int], None]:
    """A SIGTERM that ends a fake daemon: its /proc entry goes."""

    def kill(pid: int, _signal: int) -> None:
        shutil.rmtree(root / f"proc/{pid}")

    return kill


def _mount_hugetlbfs(root: Path, point: str) -> None:
    with (root / "proc/mounts").open("a") as f:
        f.write(f"nodev {point} hugetlbfs rw,relatime,pagesize=2M 0 0\n")


def test_hugetlbfs_mounted_after_libvirtd_started_restarts_it_once(tmp_path: Path) -> None:
    """libvirtd finds hugetlbfs only when it starts (a Nova guest on hugepages failed with
    'hugetlbfs filesystem is not mounted' after rtkvm net up mounted it): up restarts it."""
    system = FakeSystem(tmp_path)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("proc /proc proc rw 0 0\n")
    fs = HostFS(tmp_path, writable=True)
    kill = _fake_kill(tmp_path)
    runtime_up(fs, set(), run=system, connect=lambda: None, kill=kill)
    assert hugetlbfs_unseen(fs) == []
    first_pid = (tmp_path / "var/run/libvirtd.pid").read_text().strip()

    _mount_hugetlbfs(tmp_path, "/dev/hugepages")  # rtkvm net up, later
    assert hugetlbfs_unseen(fs) == ["/dev/hugepages"]
    again = runtime_up(fs, set(), run=system, connect=lambda: None, kill=kill)
    assert again.actions == [
        "started libvirtd (the libvirt daemon serving qemu:///system)",
        "restarted libvirtd (hugetlbfs at /dev/hugepages was mounted after it started)",
    ]
    assert (tmp_path / "var/run/libvirtd.pid").read_text().strip() != first_pid
    assert hugetlbfs_unseen(fs) == []
    calls = len(system.calls)
    assert runtime_up(fs, set(), run=system, connect=lambda: None, kill=kill).actions == []
    assert len(system.calls) == calls


def test_hugetlbfs_mounted_while_guests_run_is_a_warning_not_a_restart(tmp_path: Path) -> None:
    system = FakeSystem(tmp_path)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("")
    fs = HostFS(tmp_path, writable=True)
    runtime_up(fs, set(), run=system, connect=lambda: None, kill=_fake_kill(tmp_path))
    (tmp_path / "var/run/libvirt/qemu").mkdir(parents=True)
    (tmp_path / "var/run/libvirt/qemu/g1.pid").write_text(str(os.getpid()))
    (tmp_path / f"proc/{os.getpid()}").mkdir()
    _mount_hugetlbfs(tmp_path, "/mnt/huge")
    result = runtime_up(fs, set(), run=system, connect=lambda: None, kill=_fake_kill(tmp_path))
    assert result.actions == []
    assert len(result.warnings) == 1
    assert "hugetlbfs at /mnt/huge" in result.warnings[0] and "g1" in result.warnings[0]
    assert hugetlbfs_unseen(fs) == ["/mnt/huge"]  # still owed: said again by the next up


def test_a_libvirtd_rtkvm_did_not_start_is_not_second_guessed(tmp_path: Path) -> None:
    """Of a libvirtd started by an init system (after it mounted hugetlbfs) nothing is
    known; the record of an earlier libvirtd names another pid and says nothing either."""
    system = FakeSystem(tmp_path)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("")
    fs = HostFS(tmp_path, writable=True)
    runtime_up(fs, set(), run=system, connect=lambda: None, kill=_fake_kill(tmp_path))
    _mount_hugetlbfs(tmp_path, "/dev/hugepages")
    (tmp_path / "var/run/libvirtd.pid").write_text("4242\n")  # another libvirtd now
    (tmp_path / "proc/4242").mkdir()
    (tmp_path / "proc/4242/comm").write_text("libvirtd\n")
    assert hugetlbfs_unseen(fs) == []
    (tmp_path / "run/rtkvm/libvirtd-hugetlbfs.json").unlink()
    assert hugetlbfs_unseen(fs) == []
