"""qemu.conf rendering from runtime.toml: idempotent, explicit, quirk-driven."""

from __future__ import annotations

from rtkvm.runtime.config import BEGIN, END, load_runtime_data, render_qemu_conf


def test_shipped_data_loads_and_every_entry_says_why() -> None:
    data = load_runtime_data()
    entries = [*data.users, *data.groups, *data.directories, *data.qemu_conf]
    assert entries and all(e.why for e in entries)
    assert {"libvirt-qemu"} <= {u.name for u in data.users}


def test_cgroup_setting_only_with_rt_group_sched() -> None:
    data = load_runtime_data()
    without = {s.key for s in data.settings_for(set())}
    with_quirk = {s.key: s for s in data.settings_for({"rt_group_sched"})}
    assert "cgroup_controllers" not in without
    assert "cpu" not in with_quirk["cgroup_controllers"].value
    assert "cpuset" in with_quirk["cgroup_controllers"].value


def test_render_is_idempotent_and_comments_out_old_values() -> None:
    settings = load_runtime_data().settings_for({"rt_group_sched"})
    existing = '# a comment\nuser = "libvirt-qemu"\nvnc_listen = "0.0.0.0"\n'
    once = render_qemu_conf(existing, settings)
    assert render_qemu_conf(once, settings) == once
    assert '# user = "libvirt-qemu"  # overridden by rtkvm below' in once
    assert 'vnc_listen = "0.0.0.0"' in once
    block = once[once.index(BEGIN) : once.index(END)]
    assert 'user = "root"' in block
    assert 'cgroup_controllers = ["cpuset", "memory", "devices", "blkio", "freezer"]' in block
    assert block.count("# why:") == len(settings)


def test_dropping_a_quirk_removes_its_setting_on_the_next_render() -> None:
    data = load_runtime_data()
    with_quirk = render_qemu_conf("", data.settings_for({"rt_group_sched"}))
    without = render_qemu_conf(with_quirk, data.settings_for(set()))
    assert "cgroup_controllers" not in without
    assert without.count(BEGIN) == 1
