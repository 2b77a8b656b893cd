"""Fake /proc trees of QEMU processes for the guest tests."""

from __future__ import annotations

from rtkvm.testing.qemuproc import POLICY, stat_line, write_threads

__all__ = ["AS_DESIGNED", "POLICY", "stat_line", "write_threads"]

AS_DESIGNED = [
    (100, "qemu-system-x86", "other", 0, "0"),
    (101, "call_rcu", "other", 0, "0"),
    (102, "CPU 0/TCG", "other", 0, "0"),
    (103, "CPU 1/TCG", "fifo", 50, "1"),
]
