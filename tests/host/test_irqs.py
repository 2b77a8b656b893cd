"""IRQs: /proc/interrupts names, masks, irqbalance config and the readers on fake roots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.irqs import (
    parse_interrupt_names,
    parse_irqbalance_banned,
    parse_shell_vars,
    read_irq_report,
    read_irqs,
)
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import IrqSpec, tuned, untuned

X86 = """\
           CPU0       CPU1
  0:         33          0   IO-APIC   2-edge      timer
  9:          0          0   IO-APIC   9-fasteoi   acpi
 16:          5          0   IO-APIC  16-fasteoi   ehci_hcd:usb1, i801_smbus
 27:          0          0 PCI-MSIX-0000:00:01.0   0-edge
 28:          0          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
124:        100        200  IR-PCI-MSI 524288-edge      nvme0q0
NMI:          0          0   Non-maskable interrupts
LOC:      15936      21265   Local timer interrupts
ERR:          0
"""

ARM = """\
           CPU0       CPU1       CPU2       CPU3
 11:      12345      23456      34567      45678     GICv3  27 Level     arch_timer
 14:          0          0          0          0     GICv3  33 Level     uart-pl011
 47:          0          0          0          0   ITS-MSI 16384 Edge      eth0-rx-0
IPI0:      1000       1000       1000       1000       Rescheduling interrupts
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            X86,
            {
                0: "timer",
                9: "acpi",
                16: "ehci_hcd:usb1, i801_smbus",
                27: "",
                28: "virtio0-config",
                124: "nvme0q0",
            },
        ),
        (ARM, {11: "arch_timer", 14: "uart-pl011", 47: "eth0-rx-0"}),
        ("  CPU0\n", {}),
    ],
)
def test_parse_interrupt_names(text: str, expected: dict[int, str]) -> None:
    assert parse_interrupt_names(text) == expected


def test_parse_interrupt_names_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_interrupt_names("")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB='two words'\n", {"A": "1", "B": "two words"}),
        ('#X=1\n  export Y="2-3" # comment\n', {"Y": "2-3"}),
        ("Z=4 # trailing\nnot an assignment\n", {"Z": "4"}),
        ("", {}),
    ],
)
def test_parse_shell_vars(text: str, expected: dict[str, str]) -> None:
    assert parse_shell_vars(text) == expected


@pytest.mark.parametrize(
    ("text", "banned"),
    [
        ("#IRQBALANCE_BANNED_CPULIST=\n", CpuSet()),
        ("IRQBALANCE_BANNED_CPULIST=2-7\n", CpuSet(range(2, 8))),
        ('IRQBALANCE_BANNED_CPUS="fc"\n', CpuSet(range(2, 8))),
        ("IRQBALANCE_BANNED_CPUS=00000001,00000000\n", CpuSet([32])),
        ("IRQBALANCE_BANNED_CPUS=ff\nIRQBALANCE_BANNED_CPULIST=3\n", CpuSet([3])),
        ("IRQBALANCE_BANNED_CPULIST=\n", CpuSet()),
    ],
)
def test_irqbalance_banned_valid(text: str, banned: CpuSet) -> None:
    assert parse_irqbalance_banned(text, "/etc/default/irqbalance") == banned


@pytest.mark.parametrize("text", ["IRQBALANCE_BANNED_CPULIST=2-x\n", "IRQBALANCE_BANNED_CPUS=zz\n"])
def test_irqbalance_banned_invalid(text: str) -> None:
    result = parse_irqbalance_banned(text, "/etc/default/irqbalance")
    assert isinstance(result, Unknown)
    assert result.source == "/etc/default/irqbalance"
    assert "do not parse" in result.reason


def test_tuned_irqs_stay_on_housekeeping(tmp_path: Path) -> None:
    cpus = CpuSet(range(8))
    tuned(cpus, CpuSet([0, 1])).write(tmp_path)
    report = read_irq_report(HostFS(tmp_path))
    assert isinstance(report.irqs, tuple)
    assert [i.irq for i in report.irqs] == [120, 121, 122, 123]
    assert report.irqs[0].name == "ens1f0-TxRx-0"
    assert all(i.affinity == CpuSet([0, 1]) for i in report.irqs)
    assert [i.effective for i in report.irqs] == [CpuSet([c]) for c in (0, 1, 0, 1)]
    assert report.default_affinity == CpuSet([0, 1])
    assert report.irqbalance_running is True
    assert report.irqbalance_banned == CpuSet(range(2, 8))
    assert report.irqbalance_config == "/etc/default/irqbalance"


def test_untuned_irqs_and_missing_effective_affinity(tmp_path: Path) -> None:
    cpus = CpuSet(range(4))
    files = untuned(cpus)
    irqs = {**files.irqs, 130: IrqSpec("legacy", cpus, None)}
    replace(files, irqs=irqs, irqbalance_running=False, irqbalance_config=None).write(tmp_path)
    report = read_irq_report(HostFS(tmp_path))
    assert isinstance(report.irqs, tuple)
    legacy = next(i for i in report.irqs if i.irq == 130)
    assert legacy.affinity == cpus
    assert isinstance(legacy.effective, Unknown)
    assert legacy.effective.source == "/proc/irq/130/effective_affinity"
    assert report.irqbalance_running is False
    assert isinstance(report.irqbalance_banned, Unknown)
    assert report.irqbalance_config is None


def test_irq_only_in_proc_irq_has_empty_name(tmp_path: Path) -> None:
    (tmp_path / "proc/irq/7").mkdir(parents=True)
    (tmp_path / "proc/irq/7/smp_affinity").write_text("1\n")
    (tmp_path / "proc/interrupts").write_text("  CPU0\n")
    irqs = read_irqs(HostFS(tmp_path))
    assert isinstance(irqs, tuple) and len(irqs) == 1
    assert (irqs[0].irq, irqs[0].name, irqs[0].affinity) == (7, "", CpuSet([0]))


def test_missing_proc_interrupts_is_unknown(tmp_path: Path) -> None:
    report = read_irq_report(HostFS(tmp_path))
    assert isinstance(report.irqs, Unknown) and report.irqs.source == "/proc/interrupts"
    assert isinstance(report.default_affinity, Unknown)
    assert isinstance(report.irqbalance_running, Unknown)


def test_bad_mask_is_unknown_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "proc/irq/5").mkdir(parents=True)
    (tmp_path / "proc/irq/5/smp_affinity").write_text("not-hex\n")
    (tmp_path / "proc/interrupts").write_text("  CPU0\n  5:  1  IO-APIC 5-edge  x\n")
    irqs = read_irqs(HostFS(tmp_path))
    assert isinstance(irqs, tuple)
    assert isinstance(irqs[0].affinity, Unknown)
    assert irqs[0].affinity.source == "/proc/irq/5/smp_affinity"
