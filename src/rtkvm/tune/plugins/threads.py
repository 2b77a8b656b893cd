"""Thread priorities: kernel threads (ksoftirqd, rcuc, ktimers) and data-plane pollers.

Each profile rule names threads by a pattern on their name and gives a
SCHED_FIFO (or RR) priority; the profile loader already checked that every
level stays below the vCPU priority. Changes go through ProcessControl
(syscalls); the journal keeps each thread's original policy and priority.
Must not change CPU affinity (cpusets and the guest layer own placement).
"""

from __future__ import annotations

import fnmatch

from rtkvm.errors import WriteRefusedError
from rtkvm.tune.model import Change, Check, Status
from rtkvm.tune.plugins.base import Context, Plugin
from rtkvm.tune.system import POLICIES, format_sched
from rtkvm.tune.writer import Writer


class ThreadPlugin(Plugin):
    name = "thread"

    def plan(self, ctx: Context) -> list[Change]:
        changes: list[Change] = []
        for rule in ctx.profile.thread:
            setting = f"thread:{rule.match}"
            after = format_sched(POLICIES[rule.policy], rule.priority)
            matched = [t for t in ctx.tasks() if fnmatch.fnmatchcase(t.comm, rule.match)]
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

    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | None:
        try:
            writer.apply(change)
        except WriteRefusedError as exc:
            return f"{change.target}: priority not set ({exc.reason})"
        return None

    def verify(self, ctx: Context) -> list[Check]:
        by_rule: dict[str, list[Change]] = {}
        for change in self.plan(ctx):
            by_rule.setdefault(change.setting, []).append(change)
        checks: list[Check] = []
        for setting, changes in by_rule.items():
            first = changes[0]
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
            off = [c for c in changes if not c.in_effect]
            actual = ", ".join(f"{c.target}={c.before}" for c in off[:4]) or first.after
            checks.append(
                Check(
                    setting,
                    f"{len(changes)} threads",
                    Status.DRIFT if off else Status.OK,
                    first.after,
                    actual,
                    first.why,
                    f"{len(off)} of {len(changes)} differ" if off else "",
                )
            )
        return checks
