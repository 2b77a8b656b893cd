"""Addresses given for one networked run (guests created without ``rtkvm.ip``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from rtkvm.errors import GuestError
from rtkvm.guest import netrun
from rtkvm.guest.netcmd import GuestNetRun


class _StopError(Exception):
    """Raised by the fake boot once the run words are recorded."""


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, GuestNetRun]]:
    seen: list[tuple[str, GuestNetRun]] = []

    @contextlib.contextmanager
    def booted_with(_conn: Any, name: str, run: GuestNetRun, *, timeout: float) -> Iterator[Any]:
        seen.append((name, run))
        raise _StopError
        yield  # pragma: no cover

    monkeypatch.setattr(netrun, "booted_with", booted_with)
    return seen


def test_serving_puts_the_address_on_the_command_line(runs: list[tuple[str, GuestNetRun]]) -> None:
    with pytest.raises(_StopError), netrun.serving(None, "g2", "10.0.0.2", address="10.0.0.2/24"):
        pass  # pragma: no cover
    [(name, run)] = runs
    assert name == "g2"
    assert run.words() == "rtkvm.ip=10.0.0.2/24 rtkvm.sockperf_server=10.0.0.2"


def test_without_addresses_nothing_changes(runs: list[tuple[str, GuestNetRun]]) -> None:
    with pytest.raises(_StopError), netrun.serving(None, "g2", "10.0.0.2"):
        pass  # pragma: no cover
    with pytest.raises(_StopError):
        netrun.rtt_client(None, "g1", "10.0.0.2", "guest g2")
    assert [run.address for _, run in runs] == [None, None]


def test_rtt_client_and_server_get_their_run_addresses(
    runs: list[tuple[str, GuestNetRun]],
) -> None:
    with pytest.raises(_StopError):
        netrun.rtt_from_guest(
            None,
            "g1",
            "169.254.77.2",
            server_guest="g2",
            client_address="169.254.77.1/24",
            server_address="169.254.77.2/24",
        )
    assert [(n, r.address) for n, r in runs] == [("g2", "169.254.77.2/24")]  # server boots first
    with pytest.raises(_StopError):
        netrun.rtt_client(None, "g1", "169.254.77.2", "guest g2", address="169.254.77.1/24")
    assert runs[-1][1].words().startswith("rtkvm.ip=169.254.77.1/24 rtkvm.wait=169.254.77.2 ")


def test_a_server_address_that_is_not_the_server_ip_is_refused(
    runs: list[tuple[str, GuestNetRun]],
) -> None:
    with (
        pytest.raises(GuestError, match=r"serve on 10\.0\.0\.3"),
        netrun.serving(None, "g2", "10.0.0.3", address="10.0.0.2/24"),
    ):
        pass  # pragma: no cover
    assert runs == []


def test_rtt_from_guest_passes_the_client_address(
    runs: list[tuple[str, GuestNetRun]], monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str | None] = []

    @contextlib.contextmanager
    def serving(_conn: Any, _guest: str, _ip: str, **kw: Any) -> Iterator[None]:
        served.append(kw["address"])
        yield

    monkeypatch.setattr(netrun, "serving", serving)
    with pytest.raises(_StopError):
        netrun.rtt_from_guest(
            None, "g1", "10.0.0.2", server_guest="g2", client_address="10.0.0.1/24"
        )
    assert served == [None]
    assert [(n, r.address) for n, r in runs] == [("g1", "10.0.0.1/24")]
