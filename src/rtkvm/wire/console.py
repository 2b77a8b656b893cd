"""The interactive console's contract between the API, a host's agent and a client.

A client opens a websocket on the API (the server's ``console`` route, with
its bearer token). The API makes a one-use ticket (random, kept hashed,
:data:`TICKET_TTL_S` to live), connects to the console relay of the server's
host agent (the address the agent registered) and sends one line,
``RTKVM-CONSOLE 1 <ticket>``. The agent redeems the ticket through the API
(the agent API's ``console-tickets/redeem``): only a ticket made for one of
its own servers, unexpired and unused, opens that server's serial console.
The agent answers ``OK`` or ``ERR <why>`` on one line; after ``OK`` the
bytes flow both ways unchanged (websocket binary frames on the client's
side). This module must not do I/O: it only holds the protocol's words and
the typed bodies.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from rtkvm.wire.base import In

PROTOCOL = "RTKVM-CONSOLE 1"
"""The first words of the line the API sends to an agent's relay."""
OK = "OK"
ERR = "ERR"
LINE_MAX = 512
"""The longest handshake line either side sends, newline included."""
TICKET_TTL_S = 30.0
"""A ticket is redeemed within this many seconds of its making, or never."""
ESCAPE = b"\x1d"
"""Ctrl-]: ends an interactive console session (as ``virsh console`` does)."""

_TICKET = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ADDRESS = re.compile(
    r"^(?P<host>[A-Za-z0-9.:_-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>\d{1,5})$"
)


class ConsoleTicketIn(In):
    """What an agent redeems: the ticket the API's relay line carried."""

    ticket: str = Field(min_length=43, max_length=43, pattern=_TICKET.pattern)


class ConsoleTicketOut(BaseModel):
    """The server a redeemed ticket opens (on the redeeming agent's host)."""

    instance_id: str
    name: str


def hello(ticket: str) -> bytes:
    """The API's line to a relay."""
    return f"{PROTOCOL} {ticket}\n".encode()


def parse_hello(line: bytes) -> str | None:
    """The ticket in a relay's first line, or None when the line is not the protocol's."""
    try:
        text = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    prefix = PROTOCOL + " "
    if not text.startswith(prefix):
        return None
    ticket = text[len(prefix) :]
    return ticket if _TICKET.match(ticket) else None


def answer_ok() -> bytes:
    return f"{OK}\n".encode()


def answer_err(why: str) -> bytes:
    """A refusal on one line, cut to fit :data:`LINE_MAX`."""
    flat = " ".join(why.split())
    return f"{ERR} {flat}"[: LINE_MAX - 1].encode("utf-8", "replace") + b"\n"


def parse_answer(line: bytes) -> str | None:
    """None for ``OK``; the reason for ``ERR``; a complaint for anything else."""
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    if text == OK:
        return None
    if text.startswith(ERR + " "):
        return text[len(ERR) + 1 :] or "refused without a reason"
    if not text:
        return "the relay closed the connection without an answer"
    return f"the relay answered {text[:80]!r}, not the console protocol"


def split_address(address: str, *, any_port: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> (host, port); ValueError saying what is wrong.
    ``any_port``: port 0 (an address to listen on: the kernel picks the port) is taken."""
    match = _ADDRESS.match(address)
    if match is None:
        raise ValueError(f"console address {address!r} is not HOST:PORT")
    port = int(match["port"])
    if not (0 if any_port else 1) <= port < 65536:
        raise ValueError(f"console address {address!r}: port {port} is not 1-65535")
    return match["host"].strip("[]"), port


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
