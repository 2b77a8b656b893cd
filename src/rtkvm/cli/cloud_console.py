"""``rtkvm cloud server console``: a server's serial console, interactive or scripted.

Interactive (a terminal): the terminal goes raw, keys go to the guest, its
output to the screen, Ctrl-] ends the session (as ``virsh console``). Piped
input is sent as it comes, and the output shown until the input ends and a
short quiet time passed. ``--chat EXPECT SEND`` pairs script a session, as
``chat(8)`` does: wait for EXPECT (a regular expression), send SEND
(``\\r``, ``\\n``, ``\\t`` and ``\\\\`` understood), in order; a pattern that
does not come in time fails the command with what the console showed last.
This module must not know the API's paths: the client does.
"""

from __future__ import annotations

import io
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Sequence
from typing import cast

import click

from rtkvm.errors import CloudError
from rtkvm.wire.console import ESCAPE
from rtkvm.wire.console_client import ConsoleSession

_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\"}


def unescape(text: str) -> str:
    """``\\r``, ``\\n``, ``\\t``, ``\\\\`` as the characters; anything else as written."""
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars, "")
        out.append(_ESCAPES.get(nxt, "\\" + nxt))
    return "".join(out)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def chat(session: ConsoleSession, steps: Sequence[tuple[str, str]], timeout: float) -> None:
    """Each (expect, send) in order; the output is shown as it comes."""
    session.echo = _write
    for expect, send in steps:
        if expect:
            session.expect(expect, timeout)
        if send:
            session.send(unescape(send).encode())


def piped(session: ConsoleSession, linger: float) -> None:
    """Standard input to the console until it ends; output shown until ``linger`` s quiet."""
    done = threading.Event()
    stream = cast(io.BufferedReader, sys.stdin.buffer)  # read1: what has come, not 4096

    def feed() -> None:
        try:
            while data := stream.read1(4096):
                session.send(data)
        except CloudError:
            pass  # the console closed: the output loop says so
        finally:
            done.set()

    threading.Thread(target=feed, daemon=True).start()
    while True:
        data = session.receive(timeout=linger)
        if data:
            _write(data)
        elif done.is_set():
            return


def interactive(session: ConsoleSession, name: str) -> None:
    """A raw terminal on the console until Ctrl-] or the console closes."""
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    closed: list[str] = []

    def show() -> None:
        try:
            while True:
                data = session.receive(timeout=None)
                if data:
                    _write(data)
        except CloudError as exc:
            closed.append(str(exc))

    click.echo(f"Connected to the console of server {name}. Escape character is ^]", err=True)
    threading.Thread(target=show, daemon=True).start()
    tty.setraw(fd)
    try:
        while not closed:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            data = os.read(fd, 1024)
            if not data or ESCAPE in data:
                break
            session.send(data)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    click.echo("", err=True)
    if closed:
        raise CloudError(closed[0])
