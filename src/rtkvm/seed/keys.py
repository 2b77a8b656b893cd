"""OpenSSH public keys as tenants give them: checked, normalised and fingerprinted.

:func:`parse_public_key` accepts one ``TYPE BASE64 [COMMENT]`` line of a key
type OpenSSH still accepts (:data:`KEY_TYPES`), whose blob really is of that
type, and RSA keys of at least :data:`RSA_MIN_BITS` bits; anything else is an
InputError saying what to give. The fingerprint is OpenSSH's
(``SHA256:`` + unpadded base64). Pure: no I/O, no key generation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from rtkvm.errors import InputError

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)
"""What OpenSSH 9 accepts for login (DSA is gone)."""
RSA_MIN_BITS = 2048
KEY_MAX = 16384
"""Characters of a key line: an RSA-16384 key is about 2,800."""
HINT = "give one line of an OpenSSH public key, e.g. the contents of ~/.ssh/id_ed25519.pub"


@dataclass(frozen=True)
class PublicKey:
    type: str
    blob: bytes
    comment: str

    @property
    def line(self) -> str:
        text = f"{self.type} {base64.b64encode(self.blob).decode()}"
        return f"{text} {self.comment}" if self.comment else text

    @property
    def fingerprint(self) -> str:
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"


def _strings(blob: bytes) -> list[bytes]:
    """The SSH wire strings (uint32 length + bytes) a key blob is made of."""
    out: list[bytes] = []
    at = 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise InputError(f"the key's data is cut short: {HINT}")
        (size,) = struct.unpack_from(">I", blob, at)
        at += 4
        if at + size > len(blob):
            raise InputError(f"the key's data is cut short: {HINT}")
        out.append(blob[at : at + size])
        at += size
    return out


def parse_public_key(text: str) -> PublicKey:
    """The key on ``text``; InputError saying what is wrong."""
    if len(text) > KEY_MAX:
        raise InputError(f"the public key is {len(text)} characters, over {KEY_MAX}: {HINT}")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        raise InputError(f"the public key has {len(lines)} lines: {HINT}")
    parts = lines[0].split(None, 2)
    if len(parts) < 2:
        raise InputError(f"no key data after the type: {HINT}")
    kind, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if kind not in KEY_TYPES:
        if kind.startswith("-----BEGIN"):
            raise InputError(f"that is a private key or a PEM file, never send it: {HINT}")
        raise InputError(
            f"key type {kind[:40]!r} is not one OpenSSH accepts ({', '.join(KEY_TYPES)})"
        )
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"the key's data is not base64: {HINT}") from None
    fields = _strings(blob)
    if not fields or fields[0].decode("latin-1") != kind:
        raise InputError(f"the key's data is not a {kind} key: {HINT}")
    if kind == "ssh-rsa":
        if len(fields) != 3:
            raise InputError(f"the ssh-rsa key's data is malformed: {HINT}")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < RSA_MIN_BITS:
            raise InputError(
                f"the RSA key has {bits} bits, fewer than {RSA_MIN_BITS}: make an ed25519 key "
                "(ssh-keygen -t ed25519)"
            )
    if any(ord(c) < 32 for c in comment):
        raise InputError("the key's comment has control characters: drop them")
    return PublicKey(kind, blob, comment)
