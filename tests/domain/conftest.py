"""Fixtures of the guest-design tests: golden-file and libvirt-schema checks, samples."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.domain.xmlutil import canonical
from rtkvm.testing.guests import validate_domain_xml

HERE = Path(__file__).parent


@pytest.fixture()
def samples() -> Path:
    """Realistic domain XML in the shapes Nova, KubeVirt and libvirt itself write."""
    return HERE / "samples"


@pytest.fixture()
def golden() -> Callable[[str, str], None]:
    """Compare XML with tests/domain/golden/NAME after canonicalisation (C14N 2.0).

    ``RTKVM_UPDATE_GOLDEN=1 pytest tests/domain`` rewrites the files: review the diff.
    """

    def check(name: str, xml: str) -> None:
        path = HERE / "golden" / name
        if os.environ.get("RTKVM_UPDATE_GOLDEN") == "1":
            path.write_text(xml)
        assert path.exists(), f"missing golden file {path}"
        assert canonical(xml) == canonical(path.read_text()), f"differs from {path}"

    return check


@pytest.fixture()
def valid_domain() -> Callable[[str], None]:
    """Assert that libvirt's schema accepts a domain (virt-xml-validate)."""

    def check(xml: str) -> None:
        try:
            ok, output = validate_domain_xml(xml)
        except FileNotFoundError as exc:
            pytest.fail(f"{exc} is missing: make setup installs it")
        assert ok, output

    return check
