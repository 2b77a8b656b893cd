"""A self-signed certificate for the all-in-one API (``rtkvm up --tls``), made with openssl.

:func:`ensure_pair` keeps one certificate and key in the state directory: made
when missing, made again when the certificate expires within
:data:`RENEW_BEFORE_S` or does not name the address the API listens on. The
key is written 0600 before any byte of it exists on disk. It is for the
all-in-one (tests, demos, trying rtkvm): a site puts its own certificate on
``rtkvm cloud serve --tls-cert/--tls-key``. This module must not start the
API nor talk to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rtkvm.errors import AllInOneError

VALID_DAYS = 825
"""How long a certificate made here is valid (the most browsers and TLS stacks accept)."""
RENEW_BEFORE_S = 30 * 86400
"""A certificate that expires within this many seconds is replaced."""
SUBJECT = "/CN=rtkvm all-in-one API"


def ensure_pair(cert: Path, key: Path, address: str) -> str | None:
    """Make ``cert`` and ``key`` unless a good pair is there; returns what was done (None:
    the pair was kept). Raises AllInOneError, saying why, when openssl fails."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AllInOneError("openssl is not installed: `apt-get install openssl`, or drop --tls")
    why = _replace_because(openssl, cert, key, address)
    if why is None:
        return None
    new_key, new_cert = key.with_name(key.name + ".new"), cert.with_name(cert.name + ".new")
    new_key.unlink(missing_ok=True)
    os.close(os.open(new_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-sha256",
         "-days", str(VALID_DAYS), "-subj", SUBJECT,
         "-addext", f"subjectAltName=IP:{address},DNS:localhost",
         "-keyout", str(new_key), "-out", str(new_cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        new_key.unlink(missing_ok=True)
        new_cert.unlink(missing_ok=True)
        raise AllInOneError(f"openssl could not make a certificate: {done.stderr.strip()}")
    new_key.chmod(0o600)
    new_key.replace(key)
    new_cert.replace(cert)
    return f"made a self-signed certificate for {address} ({why}): {cert}, valid {VALID_DAYS} days"


def _replace_because(openssl: str, cert: Path, key: Path, address: str) -> str | None:
    if not cert.exists() or not key.exists():
        return "there was none"
    fresh = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-checkend", str(RENEW_BEFORE_S)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if fresh.returncode != 0:
        return "the old one expires within 30 days, or does not parse"
    names = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if f"IP Address:{address}" not in names.stdout:
        return f"the old one does not name {address}"
    return None
