"""Kernel command line parser: splitting, quoting, --, isolcpus flags, CPU lists, hugepages."""

from __future__ import annotations

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.cmdline import (
    HugepageRequest,
    parse_cmdline,
    parse_cpu_arg,
    parse_isolcpus,
    parse_memsize_kb,
    split_args,
)
from rtkvm.hostfs import Unknown


@pytest.mark.parametrize(
    ("text", "kernel", "init"),
    [
        ("", [], []),
        ("quiet", [("quiet", None)], []),
        ("root=/dev/sda1 ro", [("root", "/dev/sda1"), ("ro", None)], []),
        ("a=1  \t b=2\n", [("a", "1"), ("b", "2")], []),
        ('x="a b c" y=1', [("x", "a b c"), ("y", "1")], []),
        ('"x=a b" y', [("x", "a b"), ("y", None)], []),
        ("x= y", [("x", ""), ("y", None)], []),
        ("a=b=c", [("a", "b=c")], []),
        ("skew-tick=1", [("skew_tick", "1")], []),
        ("quiet -- single --opt=1", [("quiet", None)], ["single", "--opt=1"]),
        ("-- isolcpus=1", [], ["isolcpus=1"]),
        ('x="unterminated rest', [("x", "unterminated rest")], []),
    ],
)
def test_split_args(text: str, kernel: list[tuple[str, str | None]], init: list[str]) -> None:
    assert split_args(text) == (kernel, init)


@pytest.mark.parametrize(
    ("value", "cpus", "flags"),
    [
        (None, CpuSet(), ()),
        ("2-7", CpuSet(range(2, 8)), ()),
        ("managed_irq,domain,2-7", CpuSet(range(2, 8)), ("managed_irq", "domain")),
        ("nohz,2,4", CpuSet([2, 4]), ("nohz",)),
        ("domain,1-3,5", CpuSet([1, 2, 3, 5]), ("domain",)),
    ],
)
def test_isolcpus_valid(value: str | None, cpus: CpuSet, flags: tuple[str, ...]) -> None:
    assert parse_isolcpus(value) == (cpus, flags)


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        ("bogus,2-7", "unknown flag(s) bogus"),
        ("managed_irq,2-x", "does not parse"),
        ("7-2", "does not parse"),
        ("1-N", "uses N"),
    ],
)
def test_isolcpus_invalid(value: str, reason_part: str) -> None:
    cpus, _ = parse_isolcpus(value)
    assert isinstance(cpus, Unknown)
    assert reason_part in cpus.reason
    assert cpus.source == "/proc/cmdline"


@pytest.mark.parametrize(
    ("value", "last_cpu", "expected"),
    [
        (None, None, CpuSet()),
        ("", None, CpuSet()),
        ("1-3", None, CpuSet([1, 2, 3])),
        ("1-N", 7, CpuSet(range(1, 8))),
        ("0-15:2/4", None, CpuSet([0, 1, 4, 5, 8, 9, 12, 13])),
    ],
)
def test_cpu_arg_valid(value: str | None, last_cpu: int | None, expected: CpuSet) -> None:
    assert parse_cpu_arg("nohz_full", value, last_cpu=last_cpu) == expected


@pytest.mark.parametrize("value", ["a-b", "1,,2", "3-1", "N"])
def test_cpu_arg_invalid(value: str) -> None:
    result = parse_cpu_arg("nohz_full", value)
    assert isinstance(result, Unknown)
    assert f"nohz_full={value}" in result.reason


@pytest.mark.parametrize(
    ("text", "kb"),
    [("2M", 2048), ("1G", 1048576), ("1g", 1048576), ("2048k", 2048), ("2097152", 2048)],
)
def test_memsize_valid(text: str, kb: int) -> None:
    assert parse_memsize_kb(text) == kb


@pytest.mark.parametrize("text", ["", "2MB", "x", "-1G", "100"])
def test_memsize_invalid(text: str) -> None:
    assert parse_memsize_kb(text) is None


def test_tuned_cmdline_is_parsed_into_values() -> None:
    text = (
        "BOOT_IMAGE=/vmlinuz-6.1.0-rt root=UUID=abc ro quiet "
        "isolcpus=managed_irq,domain,2-7 nohz=on nohz_full=2-7 rcu_nocbs=2-7 "
        "irqaffinity=0-1 skew_tick=1 tsc=reliable nosoftlockup processor.max_cstate=1 "
        "idle=poll default_hugepagesz=1G hugepagesz=1G hugepages=8 "
        "hugepagesz=2M hugepages=0:512,1:256 -- splash\n"
    )
    c = parse_cmdline(text)
    assert c.raw == text.strip()
    assert c.isolcpus == CpuSet(range(2, 8))
    assert c.isolcpus_flags == ("managed_irq", "domain")
    assert c.nohz_full == CpuSet(range(2, 8))
    assert c.rcu_nocbs == CpuSet(range(2, 8))
    assert c.irqaffinity == CpuSet([0, 1])
    assert c.args["root"] == "UUID=abc"
    assert c.args["nosoftlockup"] is None
    assert c.get("processor.max_cstate") == "1"
    assert c.get("skew-tick") == "1"
    assert c.has("idle") and not c.has("splash")
    assert c.init_args == ("splash",)
    assert c.default_hugepagesz_kb == 1048576
    assert c.hugepages == (
        HugepageRequest(1048576, 8),
        HugepageRequest(2048, 768, {0: 512, 1: 256}),
    )


def test_last_occurrence_wins_and_order_is_kept() -> None:
    c = parse_cmdline("isolcpus=1 quiet isolcpus=2-3")
    assert c.args["isolcpus"] == "2-3"
    assert c.isolcpus == CpuSet([2, 3])
    assert c.ordered == (("isolcpus", "1"), ("quiet", None), ("isolcpus", "2-3"))


def test_untuned_cmdline_has_empty_isolation() -> None:
    c = parse_cmdline("console=ttyS0 quiet -- --firecracker-init isolcpus=1")
    assert c.isolcpus == CpuSet() and c.isolcpus_flags == ()
    assert c.nohz_full == CpuSet() and c.rcu_nocbs == CpuSet() and c.irqaffinity == CpuSet()
    assert c.hugepages == () and c.default_hugepagesz_kb is None
    assert "isolcpus" not in c.args


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("hugepages=lots", "bad hugepages=lots"),
        ("hugepagesz=3Q hugepages=1", "bad page size"),
        ("hugepages=0:1,x:2", "bad hugepages="),
    ],
)
def test_bad_hugepage_args_are_unknown(text: str, reason_part: str) -> None:
    c = parse_cmdline(text)
    assert isinstance(c.hugepages, Unknown)
    assert reason_part in c.hugepages.reason


def test_hugepages_without_size_use_default() -> None:
    assert parse_cmdline("hugepages=64").hugepages == (HugepageRequest(None, 64),)
