"""A tagged peer in user space: answers ARP and ping on one VLAN of a raw interface.

A peer outside the host on a VLAN network is normally a kernel VLAN interface
(``eth0.101``) in a namespace. A kernel built without CONFIG_VLAN_8021Q (this
machine's, many minimal VM kernels) has none, so :func:`serve` stands in for
it: on a packet socket bound to the namespace's ``eth0`` it answers ARP
requests for its address and ICMP echo requests to it, only when they arrive
tagged with its VLAN, and tags its answers the same way. Untagged frames and
other VLANs get no answer, as from a real trunk peer. It is test equipment for
the switch's tagging (rtkvm's trunk uplink, Neutron's VLAN segments); it must
not answer anything but ARP and ping, nor configure interfaces.

The kernel moves a received tag out of the frame into the packet's metadata,
which a packet socket reads as PACKET_AUXDATA (:func:`vlan_of`).
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from types import FrameType

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
_AUXDATA = struct.Struct("=IIIHHHH")
"""struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid."""


@dataclass(frozen=True)
class Peer:
    mac: bytes
    ip: bytes
    vlan: int


def vlan_of(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The VLAN id the kernel took off a received frame, or None for an untagged one."""
    for level, kind, data in ancillary:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= _AUXDATA.size:
            status, _, _, _, _, tci, _ = _AUXDATA.unpack_from(data)
            if int(status) & TP_STATUS_VLAN_VALID:
                return int(tci) & 0x0FFF
    return None


def _tagged(dst: bytes, src: bytes, vlan: int, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!HHH", ETH_P_8021Q, vlan, ethertype) + payload


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def answer(peer: Peer, frame: bytes, vlan: int | None) -> bytes | None:
    """The tagged answer to one received frame (tag already removed), or None."""
    if vlan != peer.vlan or len(frame) < 14:
        return None
    dst, src, ethertype = frame[:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    body = frame[14:]
    if ethertype == ETH_P_ARP and len(body) >= 28:
        op = struct.unpack("!H", body[6:8])[0]
        sender_mac, sender_ip, target_ip = body[8:14], body[14:18], body[24:28]
        if op != 1 or target_ip != peer.ip:
            return None
        reply = body[:6] + struct.pack("!H", 2) + peer.mac + peer.ip + sender_mac + sender_ip
        return _tagged(src, peer.mac, peer.vlan, ETH_P_ARP, reply)
    if ethertype == ETH_P_IP and len(body) >= 20 and dst == peer.mac:
        ihl = (body[0] & 0x0F) * 4
        total = struct.unpack("!H", body[2:4])[0]
        if body[9] != 1 or body[16:20] != peer.ip or len(body) < total or total < ihl + 8:
            return None
        icmp = body[ihl:total]
        if icmp[0] != 8:
            return None
        echo = b"\0\0\0\0" + icmp[4:]
        echo = echo[:2] + struct.pack("!H", _checksum(echo)) + echo[4:]
        header = bytearray(body[:ihl])
        header[8] = 64  # TTL
        header[12:16], header[16:20] = body[16:20], body[12:16]
        header[10:12] = b"\0\0"
        header[10:12] = struct.pack("!H", _checksum(bytes(header)))
        return _tagged(src, peer.mac, peer.vlan, ETH_P_IP, bytes(header) + echo)
    return None


def serve(interface: str, address: str, vlan: int) -> None:
    """Answer on ``interface`` until SIGTERM (run inside the peer's namespace)."""
    ip = ipaddress.IPv4Interface(address).ip.packed
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((interface, ETH_P_ALL))
    peer = Peer(sock.getsockname()[4], ip, vlan)  # the interface's MAC

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)  # NetnsPeer.create waits for this line
    sys.stdout.close()
    space = socket.CMSG_SPACE(_AUXDATA.size)
    while True:
        frame, ancillary, _, (_, _, kind, *_) = sock.recvmsg(65535, space)
        if kind == socket.PACKET_OUTGOING:
            continue
        reply = answer(peer, frame, vlan_of(ancillary))
        if reply is not None:
            sock.send(reply)


if __name__ == "__main__":  # python -m rtkvm.net.tagpeer IFACE ADDR/PREFIX VLAN
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
