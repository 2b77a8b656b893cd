"""Accelerator choice from the cached KVM probe; the probe is not run when the cache answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtkvm.errors import ImageError
from rtkvm.hostfs import HostFS
from rtkvm.runtime.facts import runtime_facts
from rtkvm.runtime.kvmprobe import cached_result, kvm_probe, needs_probe, probe_key


def _host(tmp_path: Path, kvm: bool = True) -> tuple[HostFS, Path, Path]:
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.18.44-test\n")
    (root / "dev").mkdir()
    if kvm:
        (root / "dev/kvm").write_text("")
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    initramfs = tmp_path / "initramfs.cpio.gz"
    initramfs.write_bytes(b"initramfs")
    return HostFS(root), kernel, initramfs


def _cache(tmp_path: Path, fs: HostFS, kernel: Path, booted: bool) -> Path:
    cache = tmp_path / "probe.json"
    key = probe_key(fs, "no-such-qemu", kernel)
    detail = "booted" if booted else "did not boot (timed out)"
    cache.write_text(json.dumps({"booted": booted, "detail": detail, "key": key, "seconds": 1}))
    return cache


def test_cached_failure_means_tcg_and_a_kvm_quirk(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path)
    cache = _cache(tmp_path, fs, kernel, booted=False)
    facts = runtime_facts(fs, kernel, initramfs, probe_cache=cache, qemu="no-such-qemu")
    assert facts.accel == "tcg"
    kvm = {q.id: q for q in facts.quirks}["kvm_unusable"]
    assert kvm.present is True and "timed out" in kvm.observed
    assert {q.id: q for q in facts.quirks}["vhost_user_tcg_msix"].present is True


def test_cached_success_means_kvm(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path)
    cache = _cache(tmp_path, fs, kernel, booted=True)
    facts = runtime_facts(fs, kernel, initramfs, probe_cache=cache, qemu="no-such-qemu")
    assert facts.accel == "kvm" and not facts.warnings


def test_forcing_kvm_against_the_probe_warns(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path)
    cache = _cache(tmp_path, fs, kernel, booted=False)
    facts = runtime_facts(fs, kernel, initramfs, want="kvm", probe_cache=cache, qemu="no-such-qemu")
    assert facts.accel == "kvm"
    assert any("hang" in w for w in facts.warnings)


def test_forcing_tcg_skips_the_probe_and_says_figures_are_meaningless(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path)
    cache = tmp_path / "absent.json"
    facts = runtime_facts(fs, kernel, initramfs, want="tcg", probe_cache=cache)
    assert facts.accel == "tcg" and not cache.exists()
    assert any("MEANINGLESS" in w for w in facts.warnings)


def test_no_dev_kvm_is_cached_without_running_qemu(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path, kvm=False)
    cache = tmp_path / "probe.json"
    result = kvm_probe(fs, kernel, initramfs, cache, qemu="no-such-qemu")
    assert not result.booted and "/dev/kvm" in result.detail
    assert cached_result(cache) == result


def test_a_new_guest_kernel_invalidates_the_cache(tmp_path: Path) -> None:
    fs, kernel, _ = _host(tmp_path)
    before = probe_key(fs, "q", kernel)
    kernel.write_bytes(b"another kernel")
    assert probe_key(fs, "q", kernel) != before


def test_needs_probe_follows_the_cache(tmp_path: Path) -> None:
    fs, kernel, _ = _host(tmp_path)
    cache = _cache(tmp_path, fs, kernel, booted=False)
    assert not needs_probe(fs, kernel, cache, qemu="no-such-qemu")
    assert needs_probe(fs, kernel, cache, qemu="another-qemu")
    assert needs_probe(fs, kernel, tmp_path / "absent.json")


def test_an_unbuilt_image_is_a_clear_error_that_names_the_fix(tmp_path: Path) -> None:
    fs, kernel, initramfs = _host(tmp_path)
    kernel.unlink()
    with pytest.raises(ImageError, match=r"vmlinuz missing.*rtkvm image build"):
        runtime_facts(fs, kernel, initramfs, probe_cache=tmp_path / "p.json", qemu="no-such-qemu")
