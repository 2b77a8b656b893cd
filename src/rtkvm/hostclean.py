"""Remove what rtkvm left on a host: the plan of ``rtkvm host clean`` and its execution.

The plan is built from :mod:`rtkvm.footprint` (its paths and its registry of
run-time objects) and the tuning journal, newest layer first: all-in-one
stacks, rtkvm's libvirt domains, switches, namespace peers, the host tuning,
the daemons rtkvm started; with ``everything`` also the original qemu.conf,
the accounts and libvirt directories rtkvm created, test leftovers under
/tmp and every footprint path. Each :class:`Step` says what it will do
before it does it, and reports what it could not do; a failed step never
stops the others. Everything that acts on processes, libvirt or accounts goes
through :class:`CleanSeams`, so the plan is tested on a fake root.

This module must not decide what rtkvm creates (the footprint does) and must
not touch anything that is neither on the footprint nor in its registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from rtkvm.footprint import PATHS, TMP_PREFIX, Footprint, ObjectKind


@dataclass(frozen=True)
class Step:
    """One thing ``clean`` does; ``run`` returns the problems (empty: done)."""

    what: str
    run: Callable[[], list[str]]


@dataclass
class CleanResult:
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class CleanSeams(Protocol):
    """The process, libvirt and account side of cleaning (real or fake)."""

    def stop_allinone(self, state_dir: str) -> list[str]: ...
    def stop_openstack(self, root: str) -> list[str]: ...
    def rtkvm_domains(self) -> list[str]: ...
    def delete_domain(self, name: str) -> list[str]: ...
    def stop_switch(self, rundir: str) -> list[str]: ...
    def delete_peer(self, netns: str, uplink: str) -> list[str]: ...
    def tuning_entries(self) -> int: ...
    def rollback_tuning(self) -> list[str]: ...
    def stop_daemon(self, name: str, pidfile: str) -> list[str]: ...
    def delete_account(self, kind: str, name: str) -> list[str]: ...
    def stop_postgres(self, cluster_dir: str) -> list[str]: ...


def _remove(path: Path) -> list[str]:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        return [f"cannot remove {path}: {exc.strerror or exc}"]
    return []


def _restore_file(footprint: Footprint, record: dict[str, object]) -> list[str]:
    target = footprint.local(str(record["name"]))
    content = record.get("content")
    try:
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(str(content))
    except OSError as exc:
        return [f"cannot restore {target}: {exc.strerror or exc}"]
    footprint.unregister("original_file", str(record["name"]))
    return []


def _forgetting(
    footprint: Footprint, kind: ObjectKind, name: str, action: Callable[[], list[str]]
) -> list[str]:
    """Run ``action``; when it worked, drop the object's registry record."""
    problems = action()
    if not problems:
        footprint.unregister(kind, name)
    return problems


_REGISTERED: tuple[tuple[ObjectKind, str], ...] = (
    ("allinone", "stop the rtkvm up stack of {name} (API, agent)"),
    (
        "openstack",
        "stop the rtkvm openstack up stack of {name} (its Nova guests, the services, "
        "RabbitMQ, MariaDB, PostgreSQL; its hugepages given back)",
    ),
    ("switch", "stop the switch of {name} (OVS-DPDK; hugepages given back)"),
    ("netns_peer", "delete the namespace peer {name} and its veth {uplink}"),
    ("daemon", "stop {name}, which rtkvm runtime up started"),
)
"""Run-time objects undone from the registry, in this order (after the domains for the
switches, before the daemons for the tuning), each with what the step says."""


def _undo(s: CleanSeams, kind: ObjectKind, rec: dict[str, Any]) -> Callable[[], list[str]]:
    name = str(rec["name"])
    if kind == "allinone":
        return partial(s.stop_allinone, name)
    if kind == "openstack":
        return partial(s.stop_openstack, name)
    if kind == "switch":
        return partial(s.stop_switch, name)
    if kind == "netns_peer":
        return partial(s.delete_peer, name, str(rec.get("uplink", "")))
    return partial(s.stop_daemon, name, str(rec.get("pidfile", "")))


def _registered_steps(fp: Footprint, s: CleanSeams) -> list[Step]:
    """Stacks, domains, switches, peers, tuning, daemons: what runs or is set now."""
    steps: list[Step] = []
    for kind, what in _REGISTERED:
        if kind == "switch":  # guests go before the switch they are plugged into
            steps += [
                Step(
                    f"destroy and undefine rtkvm's libvirt domain {n}", partial(s.delete_domain, n)
                )
                for n in s.rtkvm_domains()
            ]
        if kind == "daemon":  # tuning before the daemons, as apply came after them
            entries = s.tuning_entries()
            if entries:
                steps.append(
                    Step(
                        f"roll back the host tuning ({entries} journaled changes)",
                        s.rollback_tuning,
                    )
                )
        for rec in fp.registered(kind):
            label = what.format(name=rec["name"], uplink=rec.get("uplink", ""))
            action = partial(_forgetting, fp, kind, str(rec["name"]), _undo(s, kind, rec))
            steps.append(Step(label, action))
    return steps


def _everything_steps(fp: Footprint, s: CleanSeams) -> list[Step]:
    """Test leftovers, qemu.conf, libvirt directories, accounts and every footprint path."""
    steps: list[Step] = []
    tmp = fp.local(TMP_PREFIX).parent
    prefix = Path(TMP_PREFIX).name
    leftovers = sorted(tmp.glob(f"{prefix}*")) if tmp.is_dir() else []
    for path in leftovers:
        if path.name.startswith(f"{prefix}pg-"):
            steps.append(
                Step(
                    f"stop the test PostgreSQL cluster in {path} and remove it",
                    partial(_stop_and_remove, s, path),
                )
            )
        else:
            steps.append(Step(f"remove {path}", partial(_remove, path)))
    for rec in fp.registered("original_file"):
        steps.append(
            Step(
                f"restore {rec['name']} as it was before rtkvm runtime up",
                partial(_restore_file, fp, rec),
            )
        )
    for rec in reversed(fp.registered("directory")):
        d = rec["name"]
        steps.append(
            Step(
                f"remove {d}, which rtkvm runtime up created",
                partial(_forgetting, fp, "directory", d, partial(_remove, fp.local(d))),
            )
        )
    accounts = fp.registered("account")
    for rec in sorted(accounts, key=lambda r: r.get("type") != "user"):  # users before groups
        kind, acct = str(rec.get("type")), str(rec.get("account"))
        undo = partial(s.delete_account, kind, acct)
        steps.append(
            Step(
                f"delete the {kind} {acct}, which rtkvm runtime up created",
                partial(_forgetting, fp, "account", rec["name"], undo),
            )
        )
    for item in PATHS:
        inside = any(item.path.startswith(f"{other.path}/") for other in PATHS)
        if not inside and fp.local(item).exists():  # a parent's removal takes it along
            steps.append(Step(f"remove {item.path} ({item.why})", partial(_remove, fp.local(item))))
    return steps


def _stop_and_remove(s: CleanSeams, cluster: Path) -> list[str]:
    return s.stop_postgres(str(cluster)) + _remove(cluster)


def plan_clean(footprint: Footprint, seams: CleanSeams, *, everything: bool) -> list[Step]:
    """What ``rtkvm host clean`` will do, in order (nothing is done here)."""
    steps = _registered_steps(footprint, seams)
    if everything:
        steps += _everything_steps(footprint, seams)
    return steps


def run_clean(steps: list[Step]) -> CleanResult:
    """Carry out every step; problems are collected, never stop the rest."""
    result = CleanResult()
    for step in steps:
        try:
            problems = step.run()
        except Exception as exc:  # one broken step must not leave the rest undone
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            result.problems += [f"{step.what}: {p}" for p in problems]
        else:
            result.done.append(step.what)
    return result
