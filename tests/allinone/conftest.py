"""Fixtures: a temporary state directory, a free port, and `rtkvm` run as a process.

The agent runs against libvirt's test driver and the tuned 2-node host tree,
under TCG (no KVM probe), so no guest boots and `rtkvm up` stays fast. Whatever
a test leaves running is stopped afterwards through the state directory.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtkvm.allinone.stack import AllInOne
from rtkvm.allinone.state import StateDir
from rtkvm.testing.apiproc import free_port

HOST_ROOT = Path(__file__).parents[1] / "fixtures" / "hosts" / "tuned-2node"
RTKVM = [sys.executable, "-c", "from rtkvm.cli.main import main; main()"]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    AllInOne(StateDir(path)).down()  # leave nothing running, whatever the test did


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def rtkvm() -> Run:
    def run(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*RTKVM, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    return run


@pytest.fixture
def up_args(state_dir: Path, port: int, tmp_path: Path) -> list[str]:
    """`rtkvm up` for tests: test driver, fixture host, TCG, quick polling."""
    return ["up", "--state-dir", str(state_dir), "--port", str(port), "--host-name", "node1",
            "--uri", "test:///default", "--root", str(HOST_ROOT), "--accel", "tcg",
            "--image", str(tmp_path), "--guest-dir", str(tmp_path), "--interval", "0.3",
            "--timeout", "60"]  # fmt: skip
