"""A DOS (MBR) partition table as bytes: what rtkvm's disk images start with.

:func:`master_boot_record` packs boot code (syslinux's ``mbr.bin``: it loads
the active partition's boot sector), a disk signature and up to four primary
partitions addressed by LBA into the first 512 bytes of a disk. Pure: no
I/O, so a test can read the table back field by field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtkvm.errors import ImageError

SECTOR = 512
BOOT_CODE_MAX = 440
TYPE_FAT16_LBA = 0x0E
TYPE_LINUX = 0x83
_CHS_LBA = b"\xfe\xff\xff"
"""CHS fields of a partition addressed by LBA only (the values fdisk writes past 8 GiB)."""


@dataclass(frozen=True)
class Partition:
    start: int
    """First byte (a multiple of 512)."""
    size: int
    """Bytes (a multiple of 512)."""
    type: int
    active: bool = False


def master_boot_record(boot_code: bytes, signature: int, parts: list[Partition]) -> bytes:
    """The 512-byte sector 0 of a disk with these partitions."""
    if len(boot_code) > BOOT_CODE_MAX:
        raise ImageError(f"MBR boot code is {len(boot_code)} bytes, more than {BOOT_CODE_MAX}")
    if len(parts) > 4:
        raise ImageError(f"an MBR holds 4 primary partitions, not {len(parts)}")
    sector = bytearray(SECTOR)
    sector[: len(boot_code)] = boot_code
    struct.pack_into("<I", sector, 440, signature)
    for index, part in enumerate(parts):
        if part.start % SECTOR or part.size % SECTOR or part.start < SECTOR:
            raise ImageError(f"partition {index + 1} must start after sector 0 on whole sectors")
        struct.pack_into(
            "<B3sB3sII",
            sector,
            446 + 16 * index,
            0x80 if part.active else 0x00,
            _CHS_LBA,
            part.type,
            _CHS_LBA,
            part.start // SECTOR,
            part.size // SECTOR,
        )
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)
