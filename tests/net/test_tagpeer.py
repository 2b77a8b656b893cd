"""rtkvm's user-space tagged peer: what it answers, tagged, and what it leaves alone."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from rtkvm.net.tagpeer import (
    ETH_P_8021Q,
    PACKET_AUXDATA,
    SOL_PACKET,
    TP_STATUS_VLAN_VALID,
    Peer,
    answer,
    vlan_of,
)

PEER_MAC = bytes.fromhex("02aabbccdd01")
ASKER_MAC = bytes.fromhex("02aabbccdd02")
PEER = Peer(PEER_MAC, ipaddress.IPv4Address("10.78.1.254").packed, 101)
ASKER_IP = ipaddress.IPv4Address("10.78.1.5").packed


def _arp_request(target: bytes) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + ASKER_MAC + ASKER_IP + b"\0" * 6 + target
    return b"\xff" * 6 + ASKER_MAC + struct.pack("!H", 0x0806) + body


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _echo_request(dst_mac: bytes = PEER_MAC, dst_ip: bytes = PEER.ip) -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"payload!"
    icmp = icmp[:2] + struct.pack("!H", ~_checksum(icmp) & 0xFFFF) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 7, 0, 64, 1, 0, ASKER_IP, dst_ip)
    ip = ip[:10] + struct.pack("!H", ~_checksum(ip) & 0xFFFF) + ip[12:]
    return dst_mac + ASKER_MAC + struct.pack("!H", 0x0800) + ip + icmp


def _untag(frame: bytes) -> tuple[int, bytes]:
    """(VLAN id, the frame without its 802.1Q header); fails if it is not tagged."""
    tpid, tci = struct.unpack("!HH", frame[12:16])
    assert tpid == ETH_P_8021Q
    return tci & 0x0FFF, frame[:12] + frame[16:]


def test_an_arp_request_on_its_vlan_gets_a_tagged_reply_naming_its_mac() -> None:
    reply = answer(PEER, _arp_request(PEER.ip), 101)
    assert reply is not None
    vlan, frame = _untag(reply)
    assert vlan == 101 and frame[:6] == ASKER_MAC and frame[6:12] == PEER_MAC
    op, sender_mac, sender_ip = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32]
    assert (op, sender_mac, sender_ip) == (2, PEER_MAC, PEER.ip)
    assert frame[32:38] == ASKER_MAC and frame[38:42] == ASKER_IP


def test_a_ping_on_its_vlan_gets_a_tagged_echo_reply_with_good_checksums() -> None:
    reply = answer(PEER, _echo_request(), 101)
    assert reply is not None
    vlan, frame = _untag(reply)
    ip, icmp = frame[14:34], frame[34:]
    assert vlan == 101 and frame[:6] == ASKER_MAC
    assert (ip[12:16], ip[16:20]) == (PEER.ip, ASKER_IP)
    assert _checksum(ip) == 0xFFFF and _checksum(icmp) == 0xFFFF
    assert icmp[0] == 0 and icmp[4:] == _echo_request()[38:]  # same id, sequence, payload


@pytest.mark.parametrize(
    ("frame", "vlan"),
    [
        (_arp_request(PEER.ip), None),  # untagged: a trunk peer does not answer
        (_arp_request(PEER.ip), 102),  # another VLAN
        (_arp_request(ASKER_IP), 101),  # someone else's address
        (_echo_request(dst_ip=ASKER_IP), 101),
        (_echo_request(dst_mac=b"\xff" * 6), 101),
        (b"\0" * 10, 101),
    ],
)
def test_what_is_not_its_own_gets_no_answer(frame: bytes, vlan: int | None) -> None:
    assert answer(PEER, frame, vlan) is None


def test_the_vlan_comes_from_the_packet_socket_s_auxdata() -> None:
    aux = struct.pack("=IIIHHHH", TP_STATUS_VLAN_VALID, 60, 60, 0, 14, 0x2065, ETH_P_8021Q)
    assert vlan_of([(SOL_PACKET, PACKET_AUXDATA, aux)]) == 0x065
    untagged = struct.pack("=IIIHHHH", 0, 60, 60, 0, 14, 0, 0)
    assert vlan_of([(SOL_PACKET, PACKET_AUXDATA, untagged)]) is None
    assert vlan_of([(socket.SOL_SOCKET, 1, aux)]) is None and vlan_of([]) is None
