"""The MBR rtkvm writes: read back field by field, and refused when it cannot be right."""

from __future__ import annotations

import struct

import pytest

from rtkvm.errors import ImageError
from rtkvm.image.mbr import TYPE_FAT16_LBA, TYPE_LINUX, Partition, master_boot_record

MIB = 1 << 20


def test_two_partitions_read_back() -> None:
    parts = [
        Partition(MIB, 128 * MIB, TYPE_FAT16_LBA, active=True),
        Partition(129 * MIB, 2048 * MIB, TYPE_LINUX),
    ]
    sector = master_boot_record(b"\xfa\xeb" * 10, 0x1234ABCD, parts)
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    assert sector[:20] == b"\xfa\xeb" * 10
    assert struct.unpack_from("<I", sector, 440)[0] == 0x1234ABCD
    rows = [struct.unpack_from("<B3sB3sII", sector, 446 + 16 * i) for i in range(4)]
    assert rows[0][0] == 0x80 and rows[0][2] == TYPE_FAT16_LBA
    assert (rows[0][4], rows[0][5]) == (2048, 128 * 2048)
    assert rows[1][0] == 0 and rows[1][2] == TYPE_LINUX
    assert (rows[1][4], rows[1][5]) == (129 * 2048, 2048 * 2048)
    assert rows[2] == rows[3] == (0, b"\0\0\0", 0, b"\0\0\0", 0, 0)


@pytest.mark.parametrize(
    ("code", "parts", "words"),
    [
        (b"x" * 441, [], "more than 440"),
        (b"", [Partition(MIB, MIB, TYPE_LINUX)] * 5, "4 primary"),
        (b"", [Partition(0, MIB, TYPE_LINUX)], "after sector 0"),
        (b"", [Partition(MIB + 1, MIB, TYPE_LINUX)], "whole sectors"),
    ],
)
def test_what_no_bios_could_boot_is_refused(
    code: bytes, parts: list[Partition], words: str
) -> None:
    with pytest.raises(ImageError, match=words):
        master_boot_record(code, 0, parts)
