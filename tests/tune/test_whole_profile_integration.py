"""The whole tuning profile on this machine's real kernel, as an operator runs it.

``rtkvm host plan``, ``host tune`` (shown, then ``--apply``), ``host verify``
and ``host rollback`` (twice) run as commands, the journal kept in a
temporary directory. A snapshot of everything the profile can touch
(:mod:`rtkvm.testing.hostsnapshot`: sysctls, sysfs knobs, IRQ affinities,
cgroup directories and which processes are in them, kernel-thread policies,
priorities and CPUs, boot-loader and modprobe files) is taken before and
after; the two must be equal, threads that came and went aside.

Whatever happens, the host is repaired from the first snapshot before the
test ends, independently of rtkvm's journal, and anything the repair had to
put back fails the test with the list. The step times are printed
(``pytest -s``) for issue notes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rtkvm.testing import hostsnapshot
from rtkvm.testing.hostsnapshot import Snapshot

pytestmark = pytest.mark.integration

RTKVM = str(Path(sys.executable).with_name("rtkvm"))
CPUSET = "/sys/fs/cgroup/cpuset"
NODE0_2M = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"


@contextmanager
def repaired_host(before: Snapshot) -> Iterator[None]:
    """Put the host back to ``before`` on the way out; fail naming what had to be repaired."""
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:  # re-raised below, after the repair
        failure = exc
    repairs = hostsnapshot.repair(before)
    left = hostsnapshot.differences(before, hostsnapshot.take())
    if repairs or left:
        message = "the test had to repair the host:\n  " + "\n  ".join(repairs or ["nothing"])
        if left:
            message += "\nand these differences remain:\n  " + "\n  ".join(left)
        raise AssertionError(message) from failure
    if failure is not None:
        raise failure


def _rtkvm(*args: str, ok: bool = True) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run([RTKVM, *args], capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if ok:
        assert done.returncode == 0, f"rtkvm {' '.join(args)}: {done.stderr or done.stdout}"
    return done, took


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to tune the real host")
def test_whole_profile_round_trip_leaves_the_host_as_it_was(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs to make a plan")
    if shutil.which("irqbalance") and subprocess.run(["pgrep", "-x", "irqbalance"]).returncode == 0:
        pytest.skip("irqbalance is running: it moves IRQs while the snapshots are taken")
    journal = str(tmp_path / "journal")
    plan_file = tmp_path / "plan.json"
    options = ["--journal-dir", journal]
    hugepages: list[str] = []
    if Path(NODE0_2M).is_file():  # reserve two more guest pages than the host has
        hugepages = ["--guest-hugepages", str(int(Path(NODE0_2M).read_text()) + 2)]
    before = hostsnapshot.take()
    times: dict[str, float] = {}
    with repaired_host(before):
        done, times["plan"] = _rtkvm("host", "plan", "--rt-cores", "1", "--format", "json")
        plan_file.write_text(done.stdout)
        tune = ["host", "tune", "--plan", str(plan_file), *hugepages, *options]
        done, times["tune (show)"] = _rtkvm(*tune, "--format", "json")
        shown = json.loads(done.stdout)
        to_change = [c for c in shown if not c["in_effect"] and not c.get("unsupported")]
        assert to_change, "the profile changes nothing on this host: nothing is being tested"

        done, times["tune --apply"] = _rtkvm(*tune, "--apply")
        output = (done.stdout + done.stderr).splitlines()
        applied = [line for line in output if line.startswith("applied ")]
        assert applied, done.stdout + done.stderr
        during = hostsnapshot.take()
        changed = hostsnapshot.differences(before, during)
        assert changed, "tune --apply changed nothing that the snapshot sees"

        done, times["verify"] = _rtkvm("host", "verify", *hugepages, *options, "--format", "json")
        checks = json.loads(done.stdout)["checks"]
        statuses = [c["status"] for c in checks]
        assert "drift" not in statuses, [c for c in checks if c["status"] == "drift"]
        assert statuses.count("ok") > 0

        done, times["rollback"] = _rtkvm("host", "rollback", *options)
        assert "failed" not in done.stderr, done.stderr
        restored = done.stdout.strip().splitlines()[0]
        after = hostsnapshot.take()
        done, times["rollback again"] = _rtkvm("host", "rollback", *options)
        assert done.stdout.strip() == "nothing to roll back: the journal is empty"
        assert hostsnapshot.differences(before, after) == []
        assert not [p for p in Path(journal).rglob("*") if p.is_file()], "journal not empty"

    sizes = ", ".join(f"{n} {what}" for what, n in before.size().items())
    print(f"\nsnapshot: {sizes}")
    print(f"tune --apply: {applied[0]}; rollback: {restored}")
    print(f"snapshot entries changed by the apply and back after rollback: {len(changed)}")
    print(f"verify: {', '.join(f'{statuses.count(s)} {s}' for s in sorted(set(statuses)))}")
    print("steps: " + ", ".join(f"{step} {took:.2f} s" for step, took in times.items()))
