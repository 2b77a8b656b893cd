"""Safe derivation of port names and socket paths; bad ids are refused with a clear error."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtkvm.dataplane.names import (
    SUN_PATH_MAX,
    bridge_name,
    check_socket_dir,
    parse_port_name,
    vhost_port,
)
from rtkvm.errors import NetworkError

SOCKDIR = "/run/rtkvm/vhost"


def test_port_and_socket_names() -> None:
    name = vhost_port(SOCKDIR, "web_1", 2)
    assert name.port == "vhu-web_1-2"
    assert name.socket == PurePosixPath("/run/rtkvm/vhost/web_1.2.sock")
    assert bridge_name("physnet1") == "rt-physnet1"


@pytest.mark.parametrize(
    "guest",
    ["../etc", "a/b", "..", ".hidden", "a.b", "a-b", "", "UPPER", "x" * 33, "a b", "é"],
)
def test_guest_ids_that_could_escape_or_clash_are_refused(guest: str) -> None:
    with pytest.raises(NetworkError, match="guest id"):
        vhost_port(SOCKDIR, guest, 0)


@pytest.mark.parametrize("nic", [-1, 32, True])
def test_nic_index_out_of_range(nic: int) -> None:
    with pytest.raises(NetworkError, match="NIC index"):
        vhost_port(SOCKDIR, "g1", nic)


@pytest.mark.parametrize("directory", ["relative/dir", "/run/../etc", "/run/./x"])
def test_socket_dir_must_be_absolute_and_plain(directory: str) -> None:
    with pytest.raises(NetworkError, match="socket directory"):
        check_socket_dir(directory)


def test_socket_path_longer_than_sun_path_is_refused() -> None:
    long_dir = "/" + "d" * (SUN_PATH_MAX - 10)
    with pytest.raises(NetworkError, match="unix sockets allow 107"):
        vhost_port(long_dir, "guest", 0)


@pytest.mark.parametrize("label", ["Blue", "1net", "a" * 13, "br-x", "", "a_b"])
def test_bad_labels(label: str) -> None:
    with pytest.raises(NetworkError, match="15-character interface names"):
        bridge_name(label)


_ids = st.from_regex(r"[a-z0-9][a-z0-9_]{0,31}", fullmatch=True)


@given(_ids, st.integers(0, 31), _ids, st.integers(0, 31))
def test_names_are_injective_and_stay_in_the_directory(g1: str, n1: int, g2: str, n2: int) -> None:
    a, b = vhost_port(SOCKDIR, g1, n1), vhost_port(SOCKDIR, g2, n2)
    assert a.socket.parent == PurePosixPath(SOCKDIR)
    assert parse_port_name(a.port) == (g1, n1)
    if (g1, n1) != (g2, n2):
        assert a.port != b.port and a.socket != b.socket


def test_parse_port_name_ignores_other_ports() -> None:
    assert parse_port_name("eth0") is None
    assert parse_port_name("rt-blue") is None
