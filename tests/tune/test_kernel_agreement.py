"""The simulated tree and this machine's real kernel answer the same writes the same way.

One script of writes, the kind tuning makes and the kind that went wrong on a
real host (a selector's display written back, cpuset lists outside the
parent, a task moved into a group before its memory nodes, rmdir of a group
with and without tasks), runs against the real kernel and against a
simulated copy of the same files; the two lists of answers must be equal. The
real side changes only a cpuset group of its own (removed in ``finally``) and
writes THP's current word back to itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.errors import HostWriteError
from rtkvm.host.kernel import selected
from rtkvm.hostfs import HostFS
from rtkvm.tune.fakes import write_task
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import ProcessControl, RealProcessControl

pytestmark = pytest.mark.integration

THP = "/sys/kernel/mm/transparent_hugepage/enabled"
MOUNT = "/sys/fs/cgroup/cpuset"


def _answer(action: Callable[[], object]) -> str:
    try:
        action()
    except HostWriteError as exc:
        return exc.reason
    return "ok"


def _script(fs: HostFS, proc: ProcessControl, pid: int, group: str) -> list[str]:
    display = fs.read(THP)
    word = selected(display) or ""
    parent_cpus = fs.read(f"{MOUNT}/cpuset.cpus").strip()
    parent_mems = fs.read(f"{MOUNT}/cpuset.mems").strip()
    path = f"{MOUNT}{group}"
    return [
        _answer(lambda: fs.write(THP, display)),  # the display, as old journals wrote back
        _answer(lambda: fs.write(THP, "sometimes")),
        _answer(lambda: fs.write(THP, word)),
        str(selected(fs.read(THP)) == word),
        _answer(lambda: fs.make_dirs(path)),
        str(fs.is_file(f"{path}/cpuset.cpus")),
        _answer(lambda: fs.write(f"{path}/cpuset.cpus", "0-4095")),  # outside the parent
        _answer(lambda: fs.write(f"{path}/cpuset.cpus", parent_cpus)),
        _answer(lambda: proc.attach(pid, MOUNT, group, "cpuset")),  # before cpuset.mems
        _answer(lambda: fs.write(f"{path}/cpuset.mems", parent_mems)),
        _answer(lambda: proc.attach(pid, MOUNT, group, "cpuset")),
        _answer(lambda: fs.remove_dir(path)),  # a group with a task
        _answer(lambda: proc.attach(pid, MOUNT, "/", "cpuset")),
        _answer(lambda: fs.remove_dir(path)),
        str(fs.is_dir(path)),
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups on the real host")
def test_simulated_tree_and_real_kernel_agree(tmp_path: Path) -> None:
    real = HostFS("/", writable=True)
    if not real.is_file(f"{MOUNT}/cpuset.cpus") or not real.is_file(THP):
        pytest.skip("needs a cgroup v1 cpuset hierarchy and transparent hugepages")
    group = f"/rtkvm-agree-{os.getpid()}"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        real_answers = _script(real, RealProcessControl(real), sleeper.pid, group)
    finally:
        with contextlib.suppress(OSError):
            Path(f"{MOUNT}/cgroup.procs").write_text(f"{sleeper.pid}\n")
        with contextlib.suppress(OSError):
            Path(f"{MOUNT}{group}").rmdir()
        sleeper.kill()
        sleeper.wait()
    assert not Path(f"{MOUNT}{group}").exists()

    possible = "/sys/devices/system/cpu/possible"
    for host_path in (THP, f"{MOUNT}/cpuset.cpus", f"{MOUNT}/cpuset.mems", possible):
        local = tmp_path / host_path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(real.read(host_path))
    (tmp_path / MOUNT.lstrip("/") / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    write_task(tmp_path, sleeper.pid, "sleep", cgroup={"cpuset": "/", "": "/"})
    fake = SimulatedHostFS(tmp_path)
    fake_answers = _script(fake, SimulatedProcessControl(fake), sleeper.pid, group)
    assert fake_answers == real_answers
    assert real_answers[:2] == ["Invalid argument", "Invalid argument"]  # the refusal
