"""What `rtkvm up` / `down` do when things go wrong: a port in use, stale pid files,
a process that dies at start, an unreadable token; nothing is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtkvm.allinone.procs import Proc
from rtkvm.allinone.stack import AllInOne, UpRequest
from rtkvm.allinone.state import Config, StateDir
from rtkvm.errors import InputError
from rtkvm.hostfs import HostFS
from rtkvm.wire.user_client import CloudClient

from .conftest import Run, free_port


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_port_in_use_is_refused_naming_the_port(
    rtkvm: Run, up_args: list[str], state_dir: Path, port: int
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        result = rtkvm(*up_args)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use by another program" in result.stderr
    assert "--port" in result.stderr
    state = StateDir(state_dir)
    assert not state.pid_file("api").exists() and not state.pid_file("agent").exists()
    assert not state.config_file.exists()  # the refused port is not remembered


def test_stale_pid_files_are_replaced_and_never_signalled(
    rtkvm: Run, up_args: list[str], state_dir: Path
) -> None:
    state = StateDir(state_dir)
    state.create()
    # api.pid names a live process that is not ours (this test), agent.pid a dead one
    state.pid_file("api").write_text(f"{os.getpid()}\n")
    dead = _dead_pid()
    state.pid_file("agent").write_text(f"{dead}\n")

    shown = rtkvm("status", "--state-dir", str(state_dir))
    assert f"api: not running (stale pid file: pid {os.getpid()})" in shown.stdout
    assert f"agent: not running (stale pid file: pid {dead})" in shown.stdout

    result = rtkvm(*up_args)
    assert result.returncode == 0, result.stderr
    assert f"removed the stale pid file {state.pid_file('api')} (pid {os.getpid()}" in result.stdout
    assert f"removed the stale pid file {state.pid_file('agent')} (pid {dead}" in result.stdout
    assert "host node1 is up" in result.stdout
    assert int(state.pid_file("api").read_text()) != os.getpid()

    down = rtkvm("down", "--state-dir", str(state_dir))
    assert "api: stopped" in down.stdout and "agent: stopped" in down.stdout
    state.pid_file("api").write_text(f"{os.getpid()}\n")  # and down leaves it alone too
    down = rtkvm("down", "--state-dir", str(state_dir))
    assert f"api: was not running (stale pid file of pid {os.getpid()} removed)" in down.stdout
    assert not state.pid_file("api").exists()


def test_agent_that_dies_at_start_shows_its_log_and_stops_the_api(
    rtkvm: Run, up_args: list[str], state_dir: Path, tmp_path: Path, port: int
) -> None:
    wiring = tmp_path / "wiring.toml"
    wiring.write_text("this is [not toml\n")
    result = rtkvm(*up_args, "--wiring", str(wiring))
    assert result.returncode == 2
    assert "the agent process exited at start (status 2)" in result.stderr
    assert f"last lines of {state_dir / 'agent.log'}" in result.stderr
    assert str(wiring) in result.stderr  # the agent's own error, from its log
    state = StateDir(state_dir)
    assert not state.pid_file("api").exists() and not state.pid_file("agent").exists()
    with socket.socket() as probe:  # the API this `up` started is gone: the port is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_a_token_others_can_read_is_refused(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    state.create()
    secret = state.admin_token()
    assert state.admin_token() == secret  # generated once
    state.admin_token_file.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600"):
        state.admin_token()


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    """A pid file naming a live process whose command line lacks the state dir is stale."""
    proc = Proc("api", tmp_path / "api.pid", tmp_path / "api.log", str(tmp_path), HostFS("/"))
    (tmp_path / "api.pid").write_text(f"{os.getpid()}\n")
    assert proc.pid() is None
    assert proc.stop().how == "stale"
    assert not (tmp_path / "api.pid").exists()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", str(tmp_path)]
    )  # its command line names it
    try:
        # Popen returns when exec closed its pipe, before the kernel set the new command
        # line (an empty /proc/PID/cmdline for a moment): wait for it, as CI once did not
        cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
        deadline = time.monotonic() + 10
        while str(tmp_path) not in cmdline.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "api.pid").write_text(f"{sleeper.pid}\n")
        assert proc.pid() == sleeper.pid
        stopped = proc.stop()
        assert stopped.how == "stopped" and stopped.pid == sleeper.pid
        sleeper.wait(timeout=5)  # stop() reaped its child: the status is gone, so is it
        with pytest.raises(ProcessLookupError):
            os.kill(sleeper.pid, 0)
    finally:
        sleeper.kill()


def test_another_host_name_for_the_same_state_is_refused_before_starting(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    state.create()
    state.save_config(Config(port=free_port(), host="node1"))
    with pytest.raises(InputError, match=r"belongs to host 'node1', not 'node2'.*--purge"):
        AllInOne(state).up(UpRequest(host="node2"))
    assert not state.pid_file("api").exists() and not state.log_file("api").exists()


def test_purge_is_refused_while_servers_exist(
    rtkvm: Run, up_args: list[str], state_dir: Path, port: int
) -> None:
    assert rtkvm(*up_args).returncode == 0
    state = StateDir(state_dir)
    admin = CloudClient(f"http://127.0.0.1:{port}", state.admin_token(), timeout=5)
    admin.create_flavor({"name": "rt2", "vcpus": 2, "ram": 256, "extra_specs": {
        "hw:cpu_policy": "mixed", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "^0",
        "hw:mem_page_size": "4k"}})  # fmt: skip
    vm = admin.create_server("vm1", "rt2", [])
    refused = rtkvm("down", "--state-dir", str(state_dir), "--purge")
    assert refused.returncode == 2
    assert f"1 server(s) still exist (vm1 ({vm.id})): delete them first" in refused.stderr
    assert state_dir.exists() and state.pid_file("api").exists()  # nothing was stopped
    admin.delete_server(vm.id)
    deadline = time.monotonic() + 30
    while admin.servers(all_projects=True) and time.monotonic() < deadline:
        time.sleep(0.2)
    done = rtkvm("down", "--state-dir", str(state_dir), "--purge")
    assert done.returncode == 0, done.stderr
    assert "api: stopped" in done.stdout and not state_dir.exists()
