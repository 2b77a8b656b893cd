"""The Debian RT image's data and the pure steps of its build.

The whole build (mmdebstrap, mkfs.fat + syslinux, mke2fs -d, qemu-img) runs in
the demo (tests/e2e/test_demo_e2e.py), which boots the result to a login prompt."""

from __future__ import annotations

from pathlib import Path

from rtkvm.image.debian_rt import customize, dpkg_versions, inputs_hash, load_spec, mmdebstrap_argv


def test_the_shipped_data_names_what_the_issue_asks_for() -> None:
    spec = load_spec()
    for package in ("linux-image-rt-amd64", "systemd-sysv", "cloud-init", "qemu-guest-agent",
                    "rt-tests", "sockperf"):  # fmt: skip
        assert package in spec.packages
    assert "console=ttyS0" in spec.kernel_cmdline
    assert f"root=LABEL={spec.root_label}" in spec.kernel_cmdline
    assert "{cmdline}" in spec.syslinux_cfg
    assert any(f.path == "etc/cloud/cloud.cfg.d/90-rtkvm.cfg" for f in spec.files)


def test_mmdebstrap_is_told_the_packages_and_what_not_to_unpack(tmp_path: Path) -> None:
    spec = load_spec()
    argv = mmdebstrap_argv(spec, tmp_path / "root", "http://mirror.test/debian")
    assert argv[0] == "mmdebstrap" and "--mode=root" in argv
    assert argv[-3:] == [spec.suite, str(tmp_path / "root"), "http://mirror.test/debian"]
    include = next(a for a in argv if a.startswith("--include="))
    assert include.removeprefix("--include=").split(",") == list(spec.packages)
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv


def test_the_inputs_hash_moves_with_the_data_and_the_mirror() -> None:
    assert inputs_hash("a", "m1") != inputs_hash("b", "m1") != inputs_hash("a", "m2")
    assert inputs_hash("a", "m1") == inputs_hash("a", "m1")


def test_what_each_server_makes_for_itself_is_not_in_the_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    for key in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ed25519_key"):
        (root / "etc/ssh" / key).write_text("secret")
    (root / "etc/ssh/sshd_config").write_text("kept")
    (root / "etc/machine-id").write_text("0123456789abcdef\n")
    customize(load_spec(), root)
    assert sorted(p.name for p in (root / "etc/ssh").iterdir()) == ["sshd_config"]
    assert (root / "etc/machine-id").read_text() == ""
    assert (root / "etc/hostname").read_text() == "debian-rt\n"
    cfg = root / "etc/cloud/cloud.cfg.d/90-rtkvm.cfg"
    assert "datasource_list: [NoCloud, None]" in cfg.read_text()
    assert "LABEL=rtkvm-root / ext4" in (root / "etc/fstab").read_text()


def test_installed_versions_are_read_from_dpkg_status() -> None:
    status = (
        "Package: rt-tests\nStatus: install ok installed\nVersion: 2.5-1\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: sockperf\nStatus: install ok installed\nVersion: 3.10-1\n"
        "Description: x\n multi-line: text\n"
    )
    assert dpkg_versions(status) == {"rt-tests": "2.5-1", "sockperf": "3.10-1"}
