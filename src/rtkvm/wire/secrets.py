"""API token secrets: their form, how one is made, and the hash that is stored.

A token is ``rtk_`` + 32 random bytes (URL-safe base64). Only its SHA-256
is stored: a token carries 256 bits of entropy, so a slow password hash
adds nothing, and a fast hash keeps every request at one indexed lookup.
This module must not store or look up tokens (rtkvm.api.security does).
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "rtk_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
