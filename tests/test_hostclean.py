"""rtkvm host clean's plan and execution on a fake root, with fake process/libvirt seams."""

from __future__ import annotations

from pathlib import Path

from rtkvm.footprint import Footprint
from rtkvm.hostclean import plan_clean, run_clean
from rtkvm.testing.clean import FakeSeams


def _populated(root: Path) -> Footprint:
    fp = Footprint(root)
    fp.register("allinone", "/var/lib/rtkvm/allinone")
    fp.register("openstack", "/var/lib/rtkvm/openstack")
    fp.register("switch", "/work/demo-output/switch")
    fp.register("netns_peer", "rtkvm-demo-blue", uplink="rtkdemoblue")
    fp.register("daemon", "libvirtd", pidfile="/var/run/libvirtd.pid")
    for rel in ("var/lib/rtkvm/guests", "var/cache/rtkvm/image", "run/rtkvm/ovs"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/rtkvm/guests/g.serial.log").write_text("boot\n")
    return fp


def test_the_plan_undoes_newest_layers_first_and_changes_nothing(tmp_path: Path) -> None:
    fp = _populated(tmp_path)
    seams = FakeSeams(domains=("rtkvm-1",), tuning=12)
    steps = plan_clean(fp, seams, everything=False)
    assert [s.what.split(" ")[0] for s in steps] == [
        "stop",  # the stack first: its agent would otherwise rebuild guests
        "stop",  # the OpenStack all-in-one: Nova would otherwise rebuild its guests
        "destroy",
        "stop",
        "delete",
        "roll",
        "stop",
    ]
    assert "12 journaled changes" in steps[5].what
    assert "rtkvm openstack up stack" in steps[1].what
    assert seams.calls == []  # planning does nothing
    assert (tmp_path / "var/lib/rtkvm/guests/g.serial.log").exists()


def test_default_clean_stops_things_and_keeps_data(tmp_path: Path) -> None:
    fp = _populated(tmp_path)
    seams = FakeSeams(domains=("rtkvm-1",), tuning=3)
    result = run_clean(plan_clean(fp, seams, everything=False))
    assert result.problems == [] and len(result.done) == 7
    assert ("stop_openstack", "/var/lib/rtkvm/openstack") in seams.calls
    assert ("delete_peer", "rtkvm-demo-blue", "rtkdemoblue") in seams.calls
    assert ("rollback_tuning",) in seams.calls
    assert (tmp_path / "var/lib/rtkvm/guests/g.serial.log").exists()  # data stays
    assert plan_clean(fp, seams, everything=False) == []  # second run: nothing to do


def test_all_removes_every_footprint_path_and_test_leftovers(tmp_path: Path) -> None:
    fp = _populated(tmp_path)
    (tmp_path / "tmp/rtkvm-pg-abc/data").mkdir(parents=True)
    (tmp_path / "tmp/rtkvm-rtt-1-2.csv").write_text("x")
    (tmp_path / "tmp/other").mkdir()
    seams = FakeSeams()
    result = run_clean(plan_clean(fp, seams, everything=True))
    assert result.problems == []
    assert ("stop_postgres", str(tmp_path / "tmp/rtkvm-pg-abc")) in seams.calls
    for gone in ("var/lib/rtkvm", "var/cache/rtkvm", "run/rtkvm", "tmp/rtkvm-pg-abc"):
        assert not (tmp_path / gone).exists(), gone
    assert not (tmp_path / "tmp/rtkvm-rtt-1-2.csv").exists()
    assert (tmp_path / "tmp/other").is_dir()  # not rtkvm's


def test_a_failed_step_is_reported_kept_in_the_registry_and_the_rest_still_runs(
    tmp_path: Path,
) -> None:
    fp = _populated(tmp_path)
    seams = FakeSeams(fail=("stop_switch",))
    result = run_clean(plan_clean(fp, seams, everything=False))
    assert len(result.problems) == 1
    assert "stop the switch of /work/demo-output/switch" in result.problems[0]
    assert "stop_switch refused" in result.problems[0]
    assert ("stop_daemon", "libvirtd", "/var/run/libvirtd.pid") in seams.calls  # went on
    assert [r["name"] for r in fp.registered("switch")] == ["/work/demo-output/switch"]
    assert fp.registered("allinone") == []


def test_a_step_that_raises_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    from rtkvm.hostclean import Step

    def boom() -> list[str]:
        raise OSError("disk on fire")

    result = run_clean([Step("explode", boom), Step("fine", list)])
    assert result.problems == ["explode: OSError: disk on fire"] and result.done == ["fine"]


def test_qemu_conf_that_did_not_exist_is_removed_again(tmp_path: Path) -> None:
    fp = Footprint(tmp_path)
    fp.register("original_file", "/etc/libvirt/qemu.conf", content=None)
    (tmp_path / "etc/libvirt").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu.conf").write_text("user = root\n")
    result = run_clean(plan_clean(fp, FakeSeams(), everything=True))
    assert result.problems == []
    assert not (tmp_path / "etc/libvirt/qemu.conf").exists()
