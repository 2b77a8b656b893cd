"""Threads: priorities (ksoftirqd, rcuc, ktimers, data-plane pollers) and placement.

Each ``thread`` rule names threads by a pattern on their name and gives a
SCHED_FIFO (or RR) priority; the profile loader already checked that every
level stays below the vCPU priority. Each ``affinity`` rule moves unbound
threads (rcuo offload threads, kswapd) onto a CPU set; threads bound to one
CPU by the kernel (PF_NO_SETAFFINITY) are left alone. Changes go through ProcessControl
(syscalls); the journal keeps each thread's original policy, priority and
CPUs. Must not touch threads no rule names.
"""

from __future__ import annotations

import fnmatch

from rtkvm.cpuset import CpuSet
from rtkvm.errors import WriteRefusedError
from rtkvm.tune.model import Change, Check, Status
from rtkvm.tune.plugins.base import Context, Plugin
from rtkvm.tune.system import POLICIES, Task, format_sched
from rtkvm.tune.writer import Writer


def _matching(ctx: Context, pattern: str) -> list[Task]:
    return [t for t in ctx.tasks() if fnmatch.fnmatchcase(t.comm, pattern)]


def _aggregate(changes: list[Change]) -> list[Check]:
    """One check per rule: ok when every matched thread has the value."""
    by_rule: dict[str, list[Change]] = {}
    for change in changes:
        by_rule.setdefault(change.setting, []).append(change)
    checks: list[Check] = []
    for setting, group in by_rule.items():
        first = group[0]
        if first.unsupported is not None:
            checks.append(
                Check(
                    setting,
                    first.target,
                    Status.UNSUPPORTED,
                    first.after,
                    "-",
                    first.why,
                    first.unsupported,
                )
            )
            continue
        off = [c for c in group if not c.in_effect]
        actual = ", ".join(f"{c.target}={c.before}" for c in off[:4]) or first.after
        note = f"{len(off)} of {len(group)} differ" if off else ""
        checks.append(
            Check(
                setting,
                f"{len(group)} threads",
                Status.DRIFT if off else Status.OK,
                first.after,
                actual,
                first.why,
                note,
            )
        )
    return checks


class _ThreadRules(Plugin):
    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | None:
        try:
            writer.apply(change)
        except WriteRefusedError as exc:
            return f"{change.target}: not changed ({exc.reason})"
        return None

    def verify(self, ctx: Context) -> list[Check]:
        return _aggregate(self.plan(ctx))


class ThreadPlugin(_ThreadRules):
    name = "thread"

    def plan(self, ctx: Context) -> list[Change]:
        changes: list[Change] = []
        for rule in ctx.profile.thread:
            setting = f"thread:{rule.match}"
            after = format_sched(POLICIES[rule.policy], rule.priority)
            matched = _matching(ctx, rule.match)
            if not matched:
                changes.append(
                    Change(
                        setting,
                        rule.match,
                        "sched",
                        None,
                        after,
                        rule.why,
                        False,
                        unsupported=f"no thread named {rule.match} on this host",
                    )
                )
            for task in matched:
                changes.append(
                    Change(
                        setting,
                        f"tid {task.tid} ({task.comm})",
                        "sched",
                        task.sched,
                        after,
                        rule.why,
                        task.sched == after,
                        pid=task.tid,
                    )
                )
        return changes


class AffinityPlugin(_ThreadRules):
    name = "affinity"

    def plan(self, ctx: Context) -> list[Change]:
        changes: list[Change] = []
        for rule in ctx.profile.affinity:
            setting = f"affinity:{rule.match}"
            cpus = ctx.cpus(rule.cpus, setting)
            movable = [
                t for t in _matching(ctx, rule.match) if isinstance(t.cpus, CpuSet) and not t.bound
            ]
            if not movable or not cpus:
                changes.append(
                    Change(
                        setting,
                        rule.match,
                        "affinity",
                        None,
                        cpus.format(),
                        rule.why,
                        False,
                        unsupported=f"no movable thread named {rule.match} on this host",
                    )
                )
            for task in movable:
                assert isinstance(task.cpus, CpuSet)
                changes.append(
                    Change(
                        setting,
                        f"tid {task.tid} ({task.comm})",
                        "affinity",
                        task.cpus.format(),
                        cpus.format(),
                        rule.why,
                        task.cpus == cpus,
                        pid=task.tid,
                    )
                )
        return changes
