"""A round trip between two running guests through their guest agents, with the guests
played by network namespaces on this host: guest-exec runs each program for real there
(sockperf server and client, ss, ip, kill, taskset), the guest agent's protocol is faked.
The real qemu-guest-agent in rtkvm's Debian RT image is driven by the demo e2e."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import libvirt
import pytest

from rtkvm.errors import GuestError
from rtkvm.guest import qga
from rtkvm.guest.agentrtt import client_running, rtt_running, serving_running
from rtkvm.measure.report import TCG_WARNING
from rtkvm.testing.netpair import linked_namespaces

XML = """<domain type='{dtype}'><name>{name}</name><vcpu>2</vcpu><cputune>
<vcpupin vcpu='0' cpuset='0'/><vcpupin vcpu='1' cpuset='1'/>{sched}</cputune></domain>"""
RT_SCHED = "<vcpusched vcpus='1' scheduler='fifo' priority='50'/>"


@dataclass
class FakeDom:
    name: str
    netns: str | None
    dtype: str = "qemu"
    active: bool = True
    rt: bool = True

    def isActive(self) -> bool:  # noqa: N802 (libvirt's name)
        return self.active

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802
        sched = RT_SCHED if self.rt else ""
        return XML.format(dtype=self.dtype, name=self.name, sched=sched)


@dataclass
class FakeConn:
    doms: dict[str, FakeDom] = field(default_factory=dict)

    def lookupByName(self, name: str) -> FakeDom:  # noqa: N802
        if name not in self.doms:
            raise libvirt.libvirtError(f"Domain not found: no domain with matching name '{name}'")
        return self.doms[name]

    def getURI(self) -> str:  # noqa: N802
        return "qemu:///fake"


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]


class NetnsGuestAgent:
    """qemu-guest-agent for FakeDoms: programs run in the domain's namespace (or here)."""

    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing
        self.procs: dict[int, _Proc] = {}
        self.files: dict[int, IO[bytes]] = {}
        self.executed: list[tuple[str, list[str]]] = []

    def __call__(self, dom: FakeDom, request: str, timeout: int, _flags: int = 0) -> str:
        sent = json.loads(request)
        args: dict[str, Any] = sent.get("arguments", {})
        answer = getattr(self, sent["execute"].replace("-", "_"))(dom, args)
        return json.dumps({"return": answer})

    def guest_ping(self, dom: FakeDom, args: dict[str, Any]) -> dict[str, Any]:
        return {}

    def guest_exec(self, dom: FakeDom, args: dict[str, Any]) -> dict[str, Any]:
        argv = [args["path"], *args.get("arg", [])]
        self.executed.append((dom.name, argv))
        if args["path"] in self.missing or shutil.which(args["path"]) is None:
            raise libvirt.libvirtError(
                "internal error: unable to execute QEMU agent command 'guest-exec': Guest agent "
                f'command failed, error was \'Failed to execute child process "{args["path"]}" '
                "(No such file or directory)'"
            )
        if dom.netns is not None:
            argv = ["ip", "netns", "exec", dom.netns, *argv]
        out = tempfile.TemporaryFile()  # noqa: SIM115 (kept with the process)
        err = tempfile.TemporaryFile()  # noqa: SIM115
        popen = subprocess.Popen(argv, stdout=out, stderr=err)
        self.procs[popen.pid] = _Proc(popen, out, err)
        return {"pid": popen.pid}

    def guest_exec_status(self, dom: FakeDom, args: dict[str, Any]) -> dict[str, Any]:
        proc = self.procs[args["pid"]]
        code = proc.popen.poll()
        if code is None:
            return {"exited": False}
        data = {}
        for key, stream in (("out-data", proc.out), ("err-data", proc.err)):
            stream.seek(0)
            data[key] = base64.b64encode(stream.read()).decode()
        ended = {"exitcode": code} if code >= 0 else {"signal": -code}
        return {"exited": True, **ended, **data}

    def guest_file_open(self, dom: FakeDom, args: dict[str, Any]) -> int:
        handle = len(self.files) + 1
        self.files[handle] = open(args["path"], "rb")  # noqa: SIM115 (closed by guest-file-close)
        return handle

    def guest_file_read(self, dom: FakeDom, args: dict[str, Any]) -> dict[str, Any]:
        data = self.files[args["handle"]].read(args["count"])
        return {"count": len(data), "buf-b64": base64.b64encode(data).decode(), "eof": not data}

    def guest_file_close(self, dom: FakeDom, args: dict[str, Any]) -> dict[str, Any]:
        self.files.pop(args["handle"]).close()
        return {}

    def reap(self) -> None:
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetnsGuestAgent]:
    fake = NetnsGuestAgent()
    monkeypatch.setattr(qga.libvirt_qemu, "qemuAgentCommand", fake)
    monkeypatch.setattr(qga, "POLL_S", 0.05)
    yield fake
    fake.reap()


@contextlib.contextmanager
def _guest_pair(tag: str) -> Iterator[tuple[str, Any]]:
    """Two namespaces on one veth playing the guests: the client's namespace and the
    server (198.51.100.1 and .2); skipped without root, sockperf required."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    assert shutil.which("sockperf"), "sockperf missing: run `make setup`"
    n = os.getpid() % 10000
    with linked_namespaces(
        f"rtkvm-{tag}-s{n}",
        f"rtkvm-{tag}-c{n}",
        f"rtk{tag[-1]}{n}",
        server_address="198.51.100.2/24",
        client_address="198.51.100.1/24",
    ) as pair:
        yield pair


def _conn(*doms: FakeDom) -> FakeConn:
    return FakeConn({d.name: d for d in doms})


def test_a_guest_without_the_address_its_user_gave_is_refused(agent: NetnsGuestAgent) -> None:
    conn = _conn(FakeDom("a", None), FakeDom("b", None))
    with pytest.raises(GuestError, match=r"tenant-a does not have 192\.0\.2\.251/24 on any"):
        rtt_running(
            conn, "a", "b", client_address="192.0.2.251/24", server_address="192.0.2.252/24",
            labels=("tenant-a", "tenant-b"), seconds=1,
        )  # fmt: skip
    assert not any(argv[0] == "taskset" for _, argv in agent.executed)  # nothing was started


def test_a_guest_without_sockperf_says_to_install_it(agent: NetnsGuestAgent) -> None:
    agent.missing = ("sockperf",)
    conn = _conn(FakeDom("a", None), FakeDom("b", None))
    with pytest.raises(GuestError, match=r"a cannot run sockperf .*install sockperf in the image"):
        rtt_running(conn, "a", "b", client_address="192.0.2.1/24", server_address="192.0.2.2/24")


def test_a_guest_that_is_not_running_is_not_started(agent: NetnsGuestAgent) -> None:
    conn = _conn(FakeDom("a", None), FakeDom("b", None, active=False))
    with pytest.raises(GuestError, match="b is not running: a running guest is measured"):
        rtt_running(conn, "a", "b", client_address="192.0.2.1/24", server_address="192.0.2.2/24")
    assert conn.doms["b"].active is False
    with pytest.raises(GuestError, match="cannot be its own sockperf server"):
        rtt_running(conn, "a", "a", client_address="192.0.2.1/24", server_address="192.0.2.2/24")


@pytest.mark.e2e
def test_a_round_trip_runs_in_both_guests_and_leaves_them_as_they_were(
    agent: NetnsGuestAgent,
) -> None:
    with _guest_pair("art") as (client_ns, server):
        conn = _conn(FakeDom("dom-a", client_ns), FakeDom("dom-b", server.netns, rt=False))
        try:
            result = rtt_running(
                conn, "dom-a", "dom-b", client_address="198.51.100.1/24",
                server_address="198.51.100.2/24", labels=("tenant-a", "tenant-b"), seconds=2,
                mps=1000,
            )  # fmt: skip
            pids = subprocess.run(
                ["ip", "netns", "pids", server.netns], capture_output=True, text=True, check=True
            ).stdout.split()
        finally:
            agent.reap()
    assert pids == []  # the sockperf server was stopped
    assert result["method"] == "guest-agent" and result["accel"] == "tcg"
    assert result["path"] == "tenant-a -> tenant-b (198.51.100.2)"
    assert result["samples"] > 600 and 0 < result["min_us"] <= result["max_us"]
    assert sum(result["histogram"]["counts"]) == result["samples"]
    assert result["vcpus"] == {"tenant-a": "1", "tenant-b": "0-1"}  # b's flavor has no RT vCPU
    for before, after in result["guest_uptime_s"].values():
        assert after >= before > 0
    assert TCG_WARNING in result["warnings"]
    assert any(
        w.startswith("tenant-b: the server's flavor has no real-time vCPU")
        for w in result["warnings"]
    )
    started = [argv for _, argv in agent.executed if argv[:1] == ["taskset"]]
    assert [
        "taskset",
        "-c",
        "0-1",
        "sockperf",
        "server",
        "-i",
        "198.51.100.2",
        "-p",
        "11111",
    ] in started
    assert any(
        argv[:4] == ["taskset", "-c", "1", "sockperf"] and "ping-pong" in argv for argv in started
    )
    server_pid = next(pid for pid, p in agent.procs.items() if "server" in p.popen.args)
    assert ("dom-b", ["sh", "-c", f"kill -TERM {server_pid}"]) in agent.executed


@pytest.mark.e2e
def test_the_halves_of_a_round_trip_across_hosts_run_apart(agent: NetnsGuestAgent) -> None:
    """What two hosts' agents do: one keeps the server up, the other runs the client."""
    with _guest_pair("arh") as (client_ns, server):
        here = _conn(FakeDom("dom-a", client_ns))  # the client's host sees only its guest
        there = _conn(FakeDom("dom-b", server.netns))
        try:
            with serving_running(
                there, "dom-b", server_address="198.51.100.2/24", label="tenant-b"
            ) as served:
                assert served["role"] == "server" and "guest_uptime_s" not in served
                result = client_running(
                    here, "dom-a", "198.51.100.2", client_address="198.51.100.1/24",
                    label="tenant-a", server_label="tenant-b", seconds=2, mps=1000,
                )  # fmt: skip
            pids = subprocess.run(
                ["ip", "netns", "pids", server.netns], capture_output=True, text=True, check=True
            ).stdout.split()
        finally:
            agent.reap()
    assert pids == []  # the serving half stopped its server
    assert result["path"] == "tenant-a -> tenant-b (198.51.100.2)"
    assert result["samples"] > 600 and 0 < result["min_us"] <= result["max_us"]
    assert result["vcpus"] == {"tenant-a": "1"}
    assert served["vcpus"] == {"tenant-b": "1"} and served["address"] == "198.51.100.2/24"
    for facts in (result, served):
        [(before, after)] = facts["guest_uptime_s"].values()
        assert after >= before > 0
        assert TCG_WARNING in facts["warnings"]


def test_either_half_refuses_a_guest_that_is_not_running_and_starts_nothing(
    agent: NetnsGuestAgent,
) -> None:
    conn = _conn(FakeDom("b", None, active=False), FakeDom("a", None, active=False))
    with (
        pytest.raises(GuestError, match="tenant-b is not running: a running guest is measured"),
        serving_running(conn, "b", server_address="192.0.2.2/24", label="tenant-b"),
    ):
        pytest.fail("served from a guest that is not running")
    with pytest.raises(GuestError, match="tenant-a is not running"):
        client_running(conn, "a", "192.0.2.2", client_address="192.0.2.1/24", label="tenant-a")
    assert agent.executed == [] and conn.doms["b"].active is False
