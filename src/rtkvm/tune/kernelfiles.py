"""Kernel files that show one thing and accept another, in one place.

A tuning journal must hold what can be *written back*, not what was *read*:
- a **selector** (THP ``enabled``/``defrag``, ``shmem_enabled``, a block
  device's ``queue/scheduler``, ...) reads ``always [madvise] never`` and
  accepts only one of its words (``madvise``);
- a **controller list** (cgroup v2 ``cgroup.subtree_control``) reads
  ``cpuset memory`` and accepts ``+name`` / ``-name`` edits.

:func:`restorable` turns a file's display into the text that restores it,
:func:`displays_as` says whether a file already shows a restorable value,
and :func:`selector_accepts` is the kernel's rule for a selector write (the
simulated kernel of :mod:`rtkvm.tune.simkernel` applies it). How a selector
reads is :func:`rtkvm.host.kernel.selected`. This module must not read
or write files.
"""

from __future__ import annotations

from rtkvm.host.kernel import selected

CONTROLLER_LIST_FILE = "cgroup.subtree_control"


def choices(display: str) -> list[str]:
    """Every word a selector offers (brackets removed)."""
    return [word.strip("[]") for word in display.split()]


def restorable(path: str, display: str) -> str:
    """The text that, written to ``path``, brings back a file that reads ``display``."""
    if path.endswith(f"/{CONTROLLER_LIST_FILE}"):
        return display  # restored by +/- edits (see the cpuset plugin), kept as read
    word = selected(display)
    return f"{word}\n" if word is not None else display


def displays_as(live: str, restored: str) -> bool:
    """Whether a file reading ``live`` already is at the value ``restored`` stands for."""
    if live == restored:
        return True
    word = selected(live)
    return word is not None and word == restored.strip()


def selector_accepts(display: str, text: str) -> str | None:
    """The new display when a selector takes ``text``; None when the kernel refuses it."""
    wanted = text.strip()
    offered = choices(display)
    if wanted not in offered:
        return None
    return " ".join(f"[{w}]" if w == wanted else w for w in offered) + "\n"
