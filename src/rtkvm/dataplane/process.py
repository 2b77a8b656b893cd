"""Running external commands: the one process boundary of the data plane.

A ``Runner`` runs a command and returns its output or raises DataplaneError
with the command's own error text; tests that must not start processes pass
a fake runner. ``start_with_affinity`` launches a daemon with its CPU affinity
set before exec. This module must not know what any command means.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from rtkvm.cpuset import CpuSet
from rtkvm.errors import DataplaneError


class Runner(Protocol):
    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str: ...


class SubprocessRunner:
    """Runs commands for real; a non-zero exit raises DataplaneError with stderr."""

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        full_env = {**os.environ, **(env or {})}
        try:
            done = subprocess.run(
                list(args),
                env=full_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise DataplaneError(f"{args[0]} is not installed (make setup installs it)") from None
        except subprocess.TimeoutExpired:
            raise DataplaneError(f"{' '.join(args)} did not finish within {timeout:g} s") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            raise DataplaneError(f"{' '.join(args[:3])} ... failed: {detail}")
        return done.stdout


def start_with_affinity(
    args: Sequence[str],
    cpus: CpuSet,
    *,
    output: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Run a self-daemonizing command (``--detach``) with its CPU affinity set to ``cpus``.

    Its console output goes to ``output`` (a file, not a pipe: a daemon that kept the
    pipe open would make the caller wait for it to exit).
    """
    cpu_list = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, cpu_list)

    with output.open("ab") as sink:
        try:
            done = subprocess.run(
                list(args),
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                timeout=timeout,
                check=False,
                preexec_fn=pin,  # single-threaded caller; affinity must be set before exec
            )
        except FileNotFoundError:
            raise DataplaneError(f"{args[0]} is not installed (make setup installs it)") from None
        except subprocess.TimeoutExpired:
            raise DataplaneError(f"{args[0]} did not detach within {timeout:g} s") from None
    if done.returncode != 0:
        tail = output.read_text(errors="replace").strip().splitlines()[-3:]
        raise DataplaneError(
            f"{args[0]} failed to start (exit status {done.returncode}): " + " | ".join(tail)
        )
