"""`rtkvm up` / `status` / `down` as processes: the API answers with this host up, both
processes stop, a second `up` changes nothing, and the state survives until --purge."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from rtkvm.allinone.state import StateDir
from rtkvm.errors import CloudError
from rtkvm.wire.user_client import CloudClient

from .conftest import RTKVM, Run


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _pids(state: StateDir) -> tuple[int, int]:
    return (
        int(state.pid_file("api").read_text()),
        int(state.pid_file("agent").read_text()),
    )


def test_up_status_down_and_up_again(
    rtkvm: Run, up_args: list[str], state_dir: Path, port: int
) -> None:
    state = StateDir(state_dir)
    first = rtkvm(*up_args)
    assert first.returncode == 0, first.stderr
    assert "started the API" in first.stdout
    assert "enrolled host node1" in first.stdout
    assert "host node1 is up" in first.stdout
    assert f"export RTKVM_URL=http://127.0.0.1:{port}" in first.stdout
    admin_token = state.admin_token_file.read_text().strip()
    agent_token = state.agent_token_file.read_text().strip()
    assert admin_token.startswith("rtk_") and agent_token.startswith("rtk_")
    assert admin_token not in first.stdout + first.stderr  # only where it is, not what
    assert f"$(cat {state.admin_token_file})" in first.stdout
    for secret in (state.admin_token_file, state.agent_token_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700

    admin = CloudClient(f"http://127.0.0.1:{port}", admin_token, timeout=5)
    hosts = admin.hosts()
    assert [(h.name, h.status) for h in hosts] == [("node1", "up")]
    assert sum(n.rt_total for n in hosts[0].nodes) > 0  # the planned RT CPUs
    api_pid, agent_pid = _pids(state)
    assert _alive(api_pid) and _alive(agent_pid)

    shown = rtkvm("status", "--state-dir", str(state_dir))
    assert f"api: running (pid {api_pid}" in shown.stdout
    assert f"agent: running (pid {agent_pid}" in shown.stdout
    assert "host in the API: up; servers: 0" in shown.stdout

    again = rtkvm(*up_args, "--show-admin-token")  # idempotent: nothing new
    assert again.returncode == 0, again.stderr
    assert f"the API already runs (pid {api_pid})" in again.stdout
    assert f"the agent already runs (pid {agent_pid})" in again.stdout
    assert "enrolled" not in again.stdout and "started" not in again.stdout
    assert f"export RTKVM_TOKEN={admin_token}" in again.stdout  # asked for: shown in full
    assert _pids(state) == (api_pid, agent_pid)
    assert [h.name for h in admin.hosts()] == ["node1"]

    stopped = rtkvm("down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert f"agent: stopped (pid {agent_pid}" in stopped.stdout
    assert f"api: stopped (pid {api_pid}" in stopped.stdout
    assert not _alive(api_pid) and not _alive(agent_pid)
    assert not state.pid_file("api").exists() and not state.pid_file("agent").exists()
    try:
        admin.hosts()
        raise AssertionError("the API still answers after `rtkvm down`")
    except CloudError as exc:
        assert exc.status is None  # nobody listens any more
    shown = rtkvm("status", "--state-dir", str(state_dir))
    assert "api: not running" in shown.stdout and "agent: not running" in shown.stdout

    back = rtkvm(*up_args)  # from the kept state: same tokens, same host, no new enrollment
    assert back.returncode == 0, back.stderr
    assert "enrolled" not in back.stdout
    assert state.admin_token_file.read_text().strip() == admin_token
    assert state.agent_token_file.read_text().strip() == agent_token
    assert [(h.name, h.status) for h in admin.hosts()] == [("node1", "up")]

    purged = rtkvm("down", "--state-dir", str(state_dir), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert f"removed {state_dir}" in purged.stdout
    assert not state_dir.exists()


def test_down_without_state_says_nothing_ran(rtkvm: Run, state_dir: Path) -> None:
    result = rtkvm("down", "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    assert "api: was not running" in result.stdout
    assert "agent: was not running" in result.stdout
    shown = rtkvm("status", "--state-dir", str(state_dir))
    assert f"rtkvm up has not run with {state_dir}" in shown.stdout


def test_up_with_tls_serves_https_that_its_clients_and_agent_verify(
    rtkvm: Run, up_args: list[str], state_dir: Path, port: int
) -> None:
    state = StateDir(state_dir)
    first = rtkvm(*up_args, "--tls")
    assert first.returncode == 0, first.stderr
    assert "made a self-signed certificate for 127.0.0.1 (there was none)" in first.stdout
    assert f"export RTKVM_URL=https://127.0.0.1:{port}" in first.stdout
    assert f"export RTKVM_CA_FILE={state.tls_cert_file}" in first.stdout
    assert "host node1 is up" in first.stdout  # the agent reached the API over HTTPS
    assert stat.S_IMODE(state.tls_key_file.stat().st_mode) == 0o600
    cert = state.tls_cert_file.read_bytes()
    token = state.admin_token_file.read_text().strip()

    admin = CloudClient(
        f"https://127.0.0.1:{port}", token, timeout=5, ca_file=str(state.tls_cert_file)
    )
    assert [(h.name, h.status) for h in admin.hosts()] == [("node1", "up")]
    try:
        CloudClient(f"https://127.0.0.1:{port}", token, timeout=5).hosts()
        raise AssertionError("a client that does not know the certificate was let in")
    except CloudError as exc:
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify" in str(exc)
    env = {**os.environ, "RTKVM_URL": f"https://127.0.0.1:{port}", "RTKVM_TOKEN": token,
           "RTKVM_CA_FILE": str(state.tls_cert_file)}  # fmt: skip
    listed = subprocess.run(
        [*RTKVM, "cloud", "host", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert listed.returncode == 0 and "node1" in listed.stdout, listed.stderr

    again = rtkvm(*up_args)  # TLS is remembered; the certificate is kept
    assert again.returncode == 0, again.stderr
    assert "self-signed" not in again.stdout
    assert f"export RTKVM_URL=https://127.0.0.1:{port}" in again.stdout
    assert state.tls_cert_file.read_bytes() == cert
    shown = rtkvm("status", "--state-dir", str(state_dir))
    assert f"API https://127.0.0.1:{port}" in shown.stdout
    assert "host in the API: up" in shown.stdout

    plain = rtkvm(*up_args, "--no-tls")
    assert plain.returncode != 0
    assert "the API already runs over HTTPS: run `rtkvm down` first to serve HTTP" in plain.stderr
    assert rtkvm("down", "--state-dir", str(state_dir)).returncode == 0
