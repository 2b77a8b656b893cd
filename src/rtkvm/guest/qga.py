"""Run a program in a running guest through its QEMU guest agent, as libvirt exposes it.

:class:`GuestAgent` speaks qemu-guest-agent's protocol over libvirt
(``libvirt_qemu.qemuAgentCommand``): ``guest-ping``, then ``guest-exec``
with captured output and ``guest-exec-status`` polled until the program
exits or the deadline passes (or, for a program left running, polled by the
caller), and ``guest-file-*`` to read a file in chunks. The domain needs the agent's channel
(:data:`rtkvm.domain.design.GUEST_AGENT_CHANNEL`; rtkvm's image servers
have it) and the guest the agent
running. Every failure is a GuestError that says which of these is missing.
This module must not decide what to run or read a result's meaning.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt
import libvirt_qemu

from rtkvm.errors import GuestError

CHANNEL = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
"""The virtio-serial port qemu-guest-agent listens on; libvirt picks the host socket."""
COMMAND_TIMEOUT_S = 10
POLL_S = 0.5
READ_CHUNK = 1 << 20
"""Bytes per guest-file-read: an answer stays far below libvirt's message limit."""
READ_LIMIT = 256 << 20


Send = Callable[[Any, str, int], str]
"""(domain, request JSON, timeout s) -> answer JSON; raises libvirt.libvirtError."""


def _send(dom: Any, request: str, timeout: int) -> str:
    return str(libvirt_qemu.qemuAgentCommand(dom, request, timeout, 0))


@dataclass(frozen=True)
class Exited:
    code: int
    stdout: str
    stderr: str


class GuestAgent:
    """The guest agent of one running domain."""

    def __init__(self, dom: Any, name: str, send: Send = _send) -> None:
        self.dom = dom
        self.name = name
        self.send = send

    def command(self, execute: str, arguments: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            request["arguments"] = arguments
        try:
            answer = self.send(self.dom, json.dumps(request), COMMAND_TIMEOUT_S)
        except libvirt.libvirtError as exc:
            raise GuestError(
                f"the guest agent of {self.name} did not answer {execute} ({exc}): the image "
                "needs qemu-guest-agent installed and running (rtkvm's debian-rt has it)"
            ) from None
        return json.loads(answer).get("return")

    def ping(self) -> None:
        self.command("guest-ping")

    def start(self, path: str, args: list[str]) -> int:
        """Start ``path args`` in the guest (output captured); its pid in the guest."""
        started = self.command("guest-exec", {"path": path, "arg": args, "capture-output": True})
        return int(started["pid"])

    def status(self, pid: int) -> Exited | None:
        """What a program started here exited with, or None while it runs."""
        status = self.command("guest-exec-status", {"pid": pid})
        if not status.get("exited"):
            return None
        return Exited(
            code=int(status.get("exitcode", -1)),
            stdout=_text(status.get("out-data")),
            stderr=_text(status.get("err-data")),
        )

    def run(self, path: str, args: list[str], *, timeout: float) -> Exited:
        """Run ``path args`` in the guest and wait for it (at most ``timeout`` s)."""
        pid = self.start(path, args)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.status(pid)
            if exited is not None:
                return exited
            if time.monotonic() > deadline:
                raise GuestError(
                    f"{path} in {self.name} ran longer than {timeout:.0f} s: it is left running "
                    "in the guest"
                )
            time.sleep(POLL_S)

    def read(self, path: str) -> str:
        """A small file's text, read with cat in the guest."""
        done = self.run("/bin/cat", [path], timeout=COMMAND_TIMEOUT_S)
        if done.code != 0:
            raise GuestError(f"cannot read {path} in {self.name}: {done.stderr.strip()}")
        return done.stdout

    def read_file(self, path: str, *, limit: int = READ_LIMIT) -> str:
        """A file's text of any size up to ``limit`` bytes, in chunks (guest-file-read), so a
        large file never has to fit in one answer."""
        handle = self.command("guest-file-open", {"path": path, "mode": "r"})
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                got = self.command("guest-file-read", {"handle": handle, "count": READ_CHUNK})
                data = base64.b64decode(got.get("buf-b64", ""))
                chunks.append(data)
                size += len(data)
                if size > limit:
                    raise GuestError(
                        f"{path} in {self.name} is over {limit} bytes: not read (ask for fewer "
                        "samples)"
                    )
                if got.get("eof") or not data:
                    break
        finally:
            self.command("guest-file-close", {"handle": handle})
        return b"".join(chunks).decode("utf-8", "replace")


def _text(data: str | None) -> str:
    return base64.b64decode(data).decode("utf-8", "replace") if data else ""
