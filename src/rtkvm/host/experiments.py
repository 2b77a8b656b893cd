"""What the doctor proves by experiment where files cannot: SCHED_FIFO, locked memory, a KVM vCPU.

Files say what should happen; a host can still refuse (a cgroup without an RT
budget refused ``chrt -f 50 true`` to root with every capability while every
file looked fine). :func:`experiments_for` answers, for a host seen through a
HostFS:

- the live host (root ``/``): the trials run now, in one short-lived child
  process (:mod:`rtkvm.host.experiment_child`), the KVM one only where
  /dev/kvm exists;
- a captured tree: the trials recorded with it (:data:`RECORD`, written by
  ``rtkvm host capture``), or nothing.

A trial that could not run is absent, and its fact is Unknown: the doctor
then says ``unknown``, never ``pass``. This module must not change the host
(the child changes only itself and exits).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from rtkvm.hostfs import HostFS

RECORD = "/rtkvm-experiments.json"
"""Where a captured tree keeps the trials run when it was captured (relative to its root)."""
TIMEOUT_S = 20.0
NAMES = ("sched_fifo", "memlock", "kvm_vcpu")


@dataclass(frozen=True)
class Trial:
    ok: bool
    detail: str


def run_live(*, kvm: bool, timeout: float = TIMEOUT_S) -> dict[str, Trial] | str:
    """The trials on this host now; a string says why none could run."""
    argv = [sys.executable, "-m", "rtkvm.host.experiment_child", *(["--kvm"] if kvm else [])]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the experiments did not finish: {exc}"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the experiments' child exited {done.returncode}: {tail}"
    try:
        return parse(done.stdout)
    except ValueError as exc:
        return f"the experiments' child printed something else: {exc}"


def parse(text: str) -> dict[str, Trial]:
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    out = {}
    for name in NAMES:
        item = doc.get(name)
        if isinstance(item, dict) and isinstance(item.get("ok"), bool):
            out[name] = Trial(item["ok"], str(item.get("detail", "")))
    return out


def experiments_for(fs: HostFS, *, kvm: bool) -> dict[str, Trial] | str:
    """The live host's trials, or a captured tree's recorded ones; a string: why none."""
    if fs.is_real_host:
        return run_live(kvm=kvm)
    text = fs.read_maybe(RECORD)
    if not isinstance(text, str):
        return f"{fs.root} is a captured tree without recorded experiments ({RECORD})"
    try:
        return parse(text)
    except ValueError as exc:
        return f"{fs.root}{RECORD} cannot be read: {exc}"


def record(trials: dict[str, Trial]) -> str:
    """The text of :data:`RECORD` for a capture."""
    doc = {name: {"ok": t.ok, "detail": t.detail} for name, t in trials.items()}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
