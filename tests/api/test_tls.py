"""The API over HTTPS: `rtkvm cloud serve --tls-cert/--tls-key`, clients that verify it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rtkvm.errors import CloudError
from rtkvm.testing.apiproc import free_port
from rtkvm.wire.user_client import CloudClient

RTKVM = str(Path(sys.executable).with_name("rtkvm"))
ADMIN = "rtk_tls-admin-token-0123456789abcdefghijklmnopqrstuv"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "api.crt", directory / "api.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def test_the_api_serves_https_and_clients_verify_it(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    log = tmp_path / "api.log"
    proc = subprocess.Popen(
        [RTKVM, "cloud", "serve", "--database", f"sqlite:///{tmp_path}/rtkvm.db",
         "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)],
        env={**os.environ, "RTKVM_ADMIN_TOKEN": ADMIN},
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        trusted = CloudClient(url, ADMIN, ca_file=str(cert), timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert trusted.version()["name"] == "rtkvm"
                break
            except CloudError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        assert trusted.projects()[0].name == "admin"
        trusted.http.close()
        with pytest.raises(CloudError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            CloudClient(url, ADMIN, timeout=5).projects()  # the system CAs do not know it
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1", timeout=5)  # no plain HTTP on that port
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    done = subprocess.run(
        [RTKVM, "cloud", "serve", "--tls-cert", str(cert)], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "give --tls-cert and --tls-key together" in done.stderr
