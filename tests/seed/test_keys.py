"""Public keys as tenants give them: accepted, normalised, fingerprinted like ssh-keygen,
and refused with what to give."""

from __future__ import annotations

import pytest

from rtkvm.errors import InputError
from rtkvm.seed.keys import parse_public_key
from rtkvm.testing.keys import ECDSA, ED25519, ED25519_FINGERPRINT, RSA_1024


def test_keys_are_normalised_and_fingerprinted_as_ssh_keygen_does() -> None:
    key = parse_public_key(f"\n  {ED25519}  \n")
    assert key.type == "ssh-ed25519" and key.comment == "alice@laptop"
    assert key.line == ED25519
    assert key.fingerprint == ED25519_FINGERPRINT
    assert parse_public_key(ECDSA).line == ECDSA  # no comment


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "0 lines"),
        (f"{ED25519}\n{ECDSA}", "2 lines"),
        ("ssh-ed25519", "no key data"),
        ("ssh-dss AAAAB3NzaC1kc3M= x", "not one OpenSSH accepts"),
        ("-----BEGIN OPENSSH PRIVATE KEY----- abc", "private key"),
        ("ssh-ed25519 not*base64", "not base64"),
        (ED25519.replace("ssh-ed25519", "ecdsa-sha2-nistp256", 1), "not a ecdsa-sha2-nistp256"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "cut short"),
        (RSA_1024, "1024 bits, fewer than 2048"),
        (ED25519 + "\x07bell", "control characters"),
        ("ssh-ed25519 " + "A" * 20000, "over 16384"),
    ],
)
def test_what_is_not_one_usable_public_key_is_refused(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        parse_public_key(text)
