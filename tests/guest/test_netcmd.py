"""The kernel command line words of networked guest runs, and their refusals."""

from __future__ import annotations

import pytest

from rtkvm.errors import InputError
from rtkvm.guest.netcmd import GuestNetRun, check_address, check_ip, client_words
from rtkvm.net.rttrun import client_args


def test_every_step_in_order_of_the_image_init() -> None:
    run = GuestNetRun(
        address="10.77.0.11/24",
        sockperf_server="10.77.0.11",
        wait_for="10.77.0.12",
        ping="10.77.0.13",
        sockperf_client=("sockperf", "ping-pong", "-i", "10.77.0.12", "--mps=1000"),
    )
    assert run.words() == (
        "rtkvm.ip=10.77.0.11/24 rtkvm.sockperf_server=10.77.0.11 rtkvm.wait=10.77.0.12 "
        'rtkvm.ping=10.77.0.13 rtkvm.sockperf="ping-pong -i 10.77.0.12 --mps=1000"'
    )
    assert GuestNetRun().words() == ""


def test_the_rtt_client_arguments_fit_on_a_command_line() -> None:
    argv = client_args("10.77.0.12", 11111, seconds=3, mps=1000, msg_size=64, full_log="/tmp/x.csv")
    words = client_words(argv)
    assert words.startswith("ping-pong -i 10.77.0.12 -p 11111 -t 3 --mps=1000")
    assert "--full-log /tmp/x.csv" in words


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.77.0.11", "no prefix length"),
        ("10.77.0.300/24", "not an IPv4"),
        ("10.77.0.0/24", "network or broadcast"),
        ("10.77.0.255/24", "network or broadcast"),
        ("fe80::1/64", "not an IPv4"),
    ],
)
def test_bad_addresses_are_refused_with_the_reason(address: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_address(address)


def test_point_to_point_prefix_allows_both_addresses() -> None:
    assert str(check_address("10.0.0.0/31").ip) == "10.0.0.0"


@pytest.mark.parametrize("ip", ["10.77.0.12/24", "host", "", "1.2.3"])
def test_plain_ip_refuses_anything_else(ip: str) -> None:
    with pytest.raises(InputError, match="not an IPv4 address"):
        check_ip(ip)


@pytest.mark.parametrize("bad", ['-i "x"', "a b", "x;reboot", "$(id)"])
def test_client_words_refuse_what_would_break_the_command_line(bad: str) -> None:
    with pytest.raises(InputError, match="cannot go on a kernel command line"):
        client_words(["ping-pong", bad])


def test_client_words_need_arguments() -> None:
    with pytest.raises(InputError, match="no sockperf arguments"):
        client_words(["sockperf"])
