"""``rtkvm agent`` as a process against ``rtkvm cloud serve`` over HTTP, stopped by SIGTERM.

No guest boots: the agent's hypervisor is libvirt's test driver, which keeps a
domain only while a connection is open (the agent's event watch holds one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtkvm.errors import CloudError
from rtkvm.host.partition import PartitionPlan
from rtkvm.testing.apiproc import free_port
from rtkvm.wire.user_client import CloudClient

from .conftest import HOST_ROOT, TEST_URI

ADMIN = "rtk_process-test-admin-0123456789abcdefghijkl"
RTKVM = [sys.executable, "-c", "from rtkvm.cli.main import main; main()"]


def _until(what: str, check: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RTKVM_ADMIN_TOKEN": ADMIN}
    server = subprocess.Popen(
        [*RTKVM, "cloud", "serve", "--database", f"sqlite:///{tmp_path}/api.db",
         "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            CloudClient(url, ADMIN, timeout=2).version()
        except CloudError:
            return False
        return True

    try:
        _until("the API server", up)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_agent_process_registers_builds_and_stops_on_sigterm(
    api: str, tmp_path: Path, plan: PartitionPlan
) -> None:
    admin = CloudClient(api, ADMIN)
    token = admin.enroll_host("node1").agent_token
    (tmp_path / "token").write_text(token)
    (tmp_path / "token").chmod(0o600)
    (tmp_path / "plan.json").write_text(plan.to_json())
    agent = subprocess.Popen(
        [*RTKVM, "agent", "--api", api, "--token-file", str(tmp_path / "token"),
         "--plan", str(tmp_path / "plan.json"), "--root", str(HOST_ROOT), "--uri", TEST_URI,
         "--accel", "tcg", "--image", str(tmp_path), "--guest-dir", str(tmp_path),
         "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _until("registration", lambda: admin.hosts()[0].status == "up")
        flavor = {
            "name": "rt2",
            "vcpus": 2,
            "ram": 512,
            "extra_specs": {
                "hw:cpu_policy": "dedicated",
                "hw:cpu_realtime": "yes",
                "hw:cpu_realtime_mask": "^0",
                "hw:mem_page_size": "small",
            },
        }
        admin.create_flavor(flavor)
        vm = admin.create_server("vm", "rt2", [])
        # The agent follows libvirt's lifecycle events on a connection of its own, so the
        # test driver (which forgets domains when its last connection closes) keeps the
        # domain: the instance stays active, and its start reached the agent as an event.
        _until("the instance to be active", lambda: admin.server(vm.id).state == "active")
        time.sleep(1.0)  # a few steps: still there
        assert admin.server(vm.id).state == "active"
        admin.delete_server(vm.id)
        _until("the instance to go", lambda: admin.servers() == [])
        assert admin.usage("admin").rt_cores_in_use == 0
    finally:
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=15)
    assert agent.returncode == 0, output
    assert "registered host node1" in output
    assert "reconciled: 0 adopted" in output
    assert f"instance {vm.id}: active" in output
    assert f"libvirt: rtkvm-{vm.id} started" in output
    assert "following libvirt's lifecycle events on test:///default" in output
