"""The runtime's knowledge as typed data: users, groups, directories, qemu.conf.

Loads ``rtkvm/data/runtime.toml`` into frozen models and renders qemu.conf
from an existing text plus the settings that apply (a setting may apply only
when a quirk is present). Rendering is pure and idempotent: settings rtkvm
manages are commented out where they were and written once in a marked block
with their reasons. This module must not read or write host files or start
anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtkvm.errors import DataError
from rtkvm.shipped import parse_toml, shipped_text

BEGIN = "# --- rtkvm managed settings: begin (rtkvm runtime up rewrites this block) ---"
END = "# --- rtkvm managed settings: end ---"


@dataclass(frozen=True)
class UserSpec:
    name: str
    group: str
    why: str


@dataclass(frozen=True)
class GroupSpec:
    name: str
    why: str


@dataclass(frozen=True)
class DirSpec:
    path: str
    why: str


@dataclass(frozen=True)
class ConfSetting:
    key: str
    value: str | list[str]
    why: str
    when: str | None = None
    """A quirk id: the setting applies only when that quirk is present."""

    def render(self) -> str:
        return f"{self.key} = {json.dumps(self.value)}"


@dataclass(frozen=True)
class RuntimeData:
    users: tuple[UserSpec, ...]
    groups: tuple[GroupSpec, ...]
    directories: tuple[DirSpec, ...]
    qemu_conf: tuple[ConfSetting, ...]

    def settings_for(self, present_quirks: set[str]) -> list[ConfSetting]:
        """The qemu.conf settings that apply given the quirks present."""
        return [s for s in self.qemu_conf if s.when is None or s.when in present_quirks]


def load_runtime_data(text: str | None = None) -> RuntimeData:
    """Parse runtime.toml (the shipped one by default); raises DataError on bad data."""
    if text is None:
        text = shipped_text("runtime.toml")
    raw = parse_toml(text, "runtime.toml")
    try:
        return RuntimeData(
            users=tuple(UserSpec(**u) for u in raw.get("user", [])),
            groups=tuple(GroupSpec(**g) for g in raw.get("group", [])),
            directories=tuple(DirSpec(**d) for d in raw.get("directory", [])),
            qemu_conf=tuple(ConfSetting(**s) for s in raw.get("qemu_conf", [])),
        )
    except TypeError as exc:
        raise DataError(f"runtime.toml: {exc}") from None


def render_qemu_conf(existing: str, settings: list[ConfSetting]) -> str:
    """qemu.conf text with ``settings`` applied; applying twice gives the same text."""
    keys = {s.key for s in settings}
    kept: list[str] = []
    inside = False
    for line in existing.splitlines():
        if line == BEGIN:
            inside = True
            continue
        if line == END:
            inside = False
            continue
        if inside:
            continue
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in keys:
            kept.append(f"# {line}  # overridden by rtkvm below")
        else:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [BEGIN]
    for s in settings:
        block.append(f"# why: {s.why}")
        block.append(s.render())
    block.append(END)
    head = [*kept, ""] if kept else []
    return "\n".join([*head, *block]) + "\n"
