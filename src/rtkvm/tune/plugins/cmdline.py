"""Kernel command line: the plan's arguments (and the profile's) into the boot loader.

Writes GRUB_CMDLINE_LINUX in /etc/default/grub (persistent, journaled to
/var/lib, atomically replaced, then ``update-grub``; rollback restores the
file and runs it again). Without a GRUB config it writes nothing and says
which arguments to add by hand. Verify judges /proc/cmdline, not the boot
loader file: arguments in the file but not yet booted are pending_reboot.
Must not edit any other boot loader variable or reboot the host.
"""

from __future__ import annotations

import re

from rtkvm.host.cmdline import CMDLINE_PATH, split_args
from rtkvm.host.irqs import parse_shell_vars
from rtkvm.hostfs import Unknown
from rtkvm.tune.model import Change, Check, Status
from rtkvm.tune.plugins.base import Context, Plugin

GRUB_DEFAULT = "/etc/default/grub"
KEY = "GRUB_CMDLINE_LINUX"
SETTING = "cmdline:boot_loader"
_LINE = re.compile(rf"^\s*{KEY}=.*$", re.MULTILINE)


def wanted_args(ctx: Context) -> list[str]:
    """The plan's arguments, then the profile's arguments the plan does not set."""
    args = list(ctx.kernel_cmdline)
    names = {_name(a) for a in args}
    for item in ctx.profile.cmdline:
        arg = ctx.value(item.arg, f"cmdline {item.arg}")
        if _name(arg) not in names:
            args.append(arg)
            names.add(_name(arg))
    return args


def _name(arg: str) -> str:
    return arg.split("=", 1)[0].replace("-", "_")


def merged(current: str, wanted: list[str]) -> str:
    """``current`` arguments with same-named ones replaced by ``wanted``, new ones appended."""
    by_name = {_name(a): a for a in wanted}
    out: list[str] = []
    for word in current.split():
        name = _name(word)
        if name in by_name:
            out.append(by_name.pop(name))
        else:
            out.append(word)
    out.extend(a for a in wanted if _name(a) in by_name)
    return " ".join(out)


def with_cmdline(text: str, value: str) -> str:
    line = f'{KEY}="{value}"'
    matches = list(_LINE.finditer(text))
    if matches:
        last = matches[-1]
        return text[: last.start()] + line + text[last.end() :]
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}{line}\n"


def missing_from(cmdline: str, wanted: list[str]) -> list[str]:
    """Wanted arguments not on a command line (same name and value; last one wins)."""
    args, _ = split_args(cmdline)
    have = dict(args)
    out: list[str] = []
    for arg in wanted:
        name, _, value = arg.partition("=")
        key = _name(name)
        if key not in have or (have[key] or "") != value:
            out.append(arg)
    return out


class CmdlinePlugin(Plugin):
    name = "cmdline"

    def plan(self, ctx: Context) -> list[Change]:
        wanted = wanted_args(ctx)
        if not wanted:
            return []
        why = "kernel arguments that implement the partition plan (isolation, ticks, RCU, IRQs)"
        live = ctx.fs.read_maybe(GRUB_DEFAULT)
        if isinstance(live, Unknown):
            return [
                Change(
                    SETTING,
                    GRUB_DEFAULT,
                    "config",
                    None,
                    " ".join(wanted),
                    why,
                    False,
                    persistent=True,
                    unsupported="no GRUB config found: add these arguments to your boot "
                    "loader by hand: " + " ".join(wanted),
                )
            ]
        current = parse_shell_vars(live).get(KEY, "")
        value = merged(current, wanted)
        after = with_cmdline(live, value)
        return [
            Change(
                SETTING,
                GRUB_DEFAULT,
                "config",
                live,
                after,
                why,
                not missing_from(current, wanted),
                persistent=True,
                reboot=True,
                then_run=("update-grub",),
            )
        ]

    def verify(self, ctx: Context) -> list[Check]:
        wanted = wanted_args(ctx)
        if not wanted:
            return []
        change = self.plan(ctx)[0]
        booted = ctx.fs.read_line(CMDLINE_PATH)
        expected = " ".join(wanted)
        if isinstance(booted, Unknown):
            return [
                Check(
                    SETTING,
                    CMDLINE_PATH,
                    Status.UNSUPPORTED,
                    expected,
                    str(booted),
                    change.why,
                    "cannot read the booted command line",
                )
            ]
        missing = missing_from(booted, wanted)
        if not missing:
            status, note = Status.OK, ""
        elif change.unsupported is not None:
            status, note = Status.UNSUPPORTED, change.unsupported
        elif change.in_effect:
            status, note = Status.PENDING_REBOOT, "in the boot loader; reboot to take effect"
        else:
            status, note = Status.DRIFT, "missing: " + " ".join(missing)
        return [Check(SETTING, CMDLINE_PATH, status, expected, booted, change.why, note)]
