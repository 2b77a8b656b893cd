"""Typed domain elements: XML output, parsing back, round trips, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml import (
    Cpu,
    CpuFeature,
    CpuTopology,
    CpuTune,
    Domain,
    DomainXMLError,
    EmulatorSched,
    HugePage,
    IOThreadPin,
    MemNode,
    MemoryBacking,
    MemTune,
    NumaCell,
    NumaTune,
    VcpuPin,
    VcpuSched,
    parse_domain,
)
from rtkvm.domain.xml_devices import (
    CharDevice,
    Clock,
    Controller,
    Devices,
    Disk,
    Features,
    Os,
    QemuDeviceOverride,
    QemuOverride,
    QemuProperty,
    Timer,
    VhostUserInterface,
)
from rtkvm.domain.xmlutil import QEMU_NS, canonical


def _xml(elem: etree._Element) -> str:
    return canonical(etree.tostring(elem))


ELEMENTS = [
    CpuTune(
        vcpupins=(VcpuPin(0, CpuSet([2])), VcpuPin(1, CpuSet([3]))),
        emulatorpin=CpuSet.parse("0-1"),
        iothreadpins=(IOThreadPin(1, CpuSet.parse("0-1")),),
        vcpuscheds=(VcpuSched(CpuSet([1]), "fifo", 50),),
        emulatorsched=EmulatorSched("fifo", 10),
    ),
    MemoryBacking(
        hugepages=(HugePage(2048, CpuSet([0])), HugePage(1048576, CpuSet([1]))),
        nosharepages=True,
        locked=True,
        source_type="memfd",
        access_mode="shared",
        allocation_mode="immediate",
    ),
    MemTune(hard_limit_kib=2 << 20, soft_limit_kib=1 << 20),
    NumaTune("strict", CpuSet([0, 1]), (MemNode(0, "strict", CpuSet([0])),)),
    Cpu(
        mode="host-passthrough",
        check="none",
        migratable=False,
        topology=CpuTopology(1, 4, 1),
        features=(CpuFeature("tsc-deadline"),),
        cells=(NumaCell(0, CpuSet.parse("0-3"), 1 << 20, "shared"),),
    ),
    Cpu(mode="custom", match="exact", model="qemu64", model_fallback="forbid"),
    Os(machine="pc", kernel="/k", initrd="/i", cmdline="console=ttyS0 isolcpus=1"),
    Os(boot_devs=("hd", "network")),
    Features(acpi=True, apic=True, pmu=False),
    Features(acpi=False, apic=True, pmu=None, other=('<hyperv mode="custom"/>',)),
    Clock("utc", (Timer("rtc", tickpolicy="catchup"), Timer("hpet", present=False))),
    Devices(
        emulator="/usr/bin/qemu-system-x86_64",
        disks=(Disk("/img/a.qcow2", driver_type="qcow2"),),
        interfaces=(VhostUserInterface("/run/vhu0", "server", "52:54:00:00:00:01", queues=2),),
        serials=(CharDevice("serial", "file", "/log/s.log", None, 0),),
        consoles=(CharDevice("console", "pty", None, "serial", 0),),
        controllers=(Controller("usb", "none"),),
        memballoon="none",
        other=('<rng model="virtio"><backend model="random">/dev/urandom</backend></rng>',),
    ),
    QemuOverride(
        (QemuDeviceOverride("net0", (QemuProperty("vectors", "unsigned", "0"),)),),
    ),
]


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: type(e).__name__)
def test_element_round_trip(element: object) -> None:
    rendered = element.to_element()  # type: ignore[attr-defined]
    again = type(element).from_element(rendered)  # type: ignore[attr-defined]
    assert again == element
    assert _xml(again.to_element()) == _xml(rendered)


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (
            CpuTune(vcpuscheds=(VcpuSched(CpuSet.parse("2-3"), "fifo", 1),)),
            '<cputune><vcpusched vcpus="2-3" scheduler="fifo" priority="1"/></cputune>',
        ),
        (
            MemoryBacking(hugepages=(HugePage(2048),), locked=True),
            '<memoryBacking><hugepages><page size="2048" unit="KiB"/></hugepages>'
            "<locked/></memoryBacking>",
        ),
        (Features(pmu=False), "<features><acpi/><apic/><pmu state='off'/></features>"),
        (Timer("hpet", present=False), "<timer name='hpet' present='no'/>"),
        (
            VhostUserInterface("/run/v.sock"),
            "<interface type='vhostuser'><source type='unix' path='/run/v.sock' mode='server'/>"
            "<model type='virtio'/></interface>",
        ),
        (Controller("usb", "none"), "<controller type='usb' model='none'/>"),
    ],
)
def test_element_xml(element: object, expected: str) -> None:
    assert _xml(element.to_element()) == canonical(expected)  # type: ignore[attr-defined]


def _domain() -> Domain:
    return Domain(
        name="golden",
        uuid="00000000-0000-4000-8000-000000000001",
        memory_kib=1 << 20,
        vcpus=2,
        cputune=ELEMENTS[0],  # type: ignore[arg-type]
        memory_backing=MemoryBacking(hugepages=(HugePage(2048),), locked=True),
        numatune=NumaTune("strict", CpuSet([0])),
        os=Os(machine="pc", kernel="/boot/vmlinuz"),
        features=Features(pmu=False),
        cpu=Cpu(cells=(NumaCell(0, CpuSet.parse("0-1"), 1 << 20, "shared"),)),
        clock=Clock("utc", (Timer("hpet", present=False),)),
        devices=Devices(emulator="/usr/bin/qemu-system-x86_64", memballoon="none"),
        qemu_override=ELEMENTS[-1],  # type: ignore[arg-type]
    )


def test_domain_golden_and_round_trip(
    golden: Callable[[str, str], None], valid_domain: Callable[[str], None]
) -> None:
    domain = _domain()
    xml = domain.to_xml()
    golden("typed_domain.xml", xml)
    assert parse_domain(xml) == domain
    valid_domain(xml)


def test_qemu_namespace_only_when_overriding() -> None:
    plain = Domain(name="a", memory_kib=1024, vcpus=1)
    assert "xmlns:qemu" not in plain.to_xml()
    root = etree.fromstring(_domain().to_xml().encode())
    assert root.nsmap.get("qemu") == QEMU_NS
    assert root.find(f"{{{QEMU_NS}}}override/{{{QEMU_NS}}}device").get("alias") == "net0"


@pytest.mark.parametrize("sample", ["nova_rt.xml", "kubevirt_rt.xml", "libvirt_dumped_tcg.xml"])
def test_samples_parse_and_round_trip(
    sample: str, samples: Path, valid_domain: Callable[[str], None]
) -> None:
    domain = parse_domain((samples / sample).read_text(), source=sample)
    again = parse_domain(domain.to_xml())
    assert again == domain
    valid_domain(domain.to_xml())


def test_nova_sample_fields(samples: Path) -> None:
    domain = parse_domain((samples / "nova_rt.xml").read_text())
    assert domain.memory_kib == 4 << 20
    assert domain.cputune is not None
    assert domain.cputune.emulatorpin == CpuSet.parse("4-5")
    assert [s.vcpus.format() for s in domain.cputune.vcpuscheds] == ["2", "3"]
    assert domain.devices.interfaces[0].socket_path.startswith("/var/run/openvswitch/")
    assert domain.devices.memballoon == "virtio"
    assert domain.devices.tag_count("graphics") == 1
    assert any("nova:instance" in o for o in domain.other)  # metadata kept verbatim


def test_kubevirt_memory_in_bytes_and_unmodelled_devices_kept(samples: Path) -> None:
    domain = parse_domain((samples / "kubevirt_rt.xml").read_text())
    assert domain.memory_kib == 2 << 20
    assert domain.devices.interfaces == ()  # a tap interface is not vhost-user
    assert domain.devices.tag_count("interface") == 1
    [serial] = domain.devices.serials  # a unix socket QEMU serves, with its log
    assert (serial.type, serial.mode, serial.log_append) == ("unix", "bind", True)
    assert serial.log_file == "/var/run/kubevirt-private/7f3e2d1c/virt-serial0-log"
    assert parse_domain(domain.to_xml()).devices.serials == (serial,)
    assert domain.devices.consoles[0].type == "pty"
    assert domain.features is not None and domain.features.pmu is False


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain", "not well-formed"),
        ("<vm type='kvm'/>", "expected a <domain>"),
        ("<domain type='kvm'><memory>1</memory><vcpu>1</vcpu></domain>", "no <name>"),
        ("<domain type='kvm'><name>a</name><vcpu>1</vcpu></domain>", "has no <memory>"),
        ("<domain type='kvm'><name>a</name><memory>1</memory></domain>", "has no <vcpu>"),
        ("<domain><name>a</name><memory>1</memory><vcpu>1</vcpu></domain>", "'type'"),
        (
            "<domain type='kvm'><name>a</name><memory>x</memory><vcpu>1</vcpu></domain>",
            "expected an integer",
        ),
        (
            "<domain type='kvm'><name>a</name><memory unit='parsec'>1</memory>"
            "<vcpu>1</vcpu></domain>",
            "unknown unit",
        ),
        (
            "<domain type='kvm'><name>a</name><memory>1</memory><vcpu>1</vcpu>"
            "<cputune><vcpupin vcpu='0' cpuset='1-x'/></cputune></domain>",
            "cpuset='1-x'",
        ),
        (
            "<domain type='kvm'><name>a</name><memory>1</memory><vcpu>1</vcpu>"
            "<cputune><vcpusched vcpus='0'/></cputune></domain>",
            "'scheduler'",
        ),
        (
            "<domain type='kvm'><name>a</name><memory>1</memory><vcpu>1</vcpu>"
            "<features><pmu state='maybe'/></features></domain>",
            "yes/no or on/off",
        ),
    ],
)
def test_parse_errors_name_the_problem(xml: str, message: str) -> None:
    with pytest.raises(DomainXMLError, match=r"sample\.xml") as info:
        parse_domain(xml, source="sample.xml")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("unit", "value", "kib"),
    [
        ("KiB", 1024, 1024),
        (None, 1024, 1024),
        ("MiB", 2, 2048),
        ("GiB", 1, 1 << 20),
        ("b", 2048, 2),
    ],
)
def test_memory_units(unit: str | None, value: int, kib: int) -> None:
    attr = f" unit='{unit}'" if unit else ""
    xml = f"<domain type='kvm'><name>a</name><memory{attr}>{value}</memory><vcpu>1</vcpu></domain>"
    assert parse_domain(xml).memory_kib == kib


_cpusets = st.frozensets(st.integers(0, 255), min_size=1, max_size=16).map(CpuSet)


@given(
    pins=st.lists(_cpusets, min_size=1, max_size=8),
    emulator=_cpusets,
    priority=st.integers(1, 99),
    scheduler=st.sampled_from(["fifo", "rr"]),
)
def test_cputune_round_trip_property(
    pins: list[CpuSet], emulator: CpuSet, priority: int, scheduler: str
) -> None:
    tune = CpuTune(
        vcpupins=tuple(VcpuPin(i, p) for i, p in enumerate(pins)),
        emulatorpin=emulator,
        vcpuscheds=(VcpuSched(CpuSet(range(len(pins))), scheduler, priority),),
    )
    assert CpuTune.from_element(tune.to_element()) == tune


@pytest.mark.parametrize(
    "kept",
    [
        "<shares>4096</shares>",  # cputune child rtkvm does not model
        'rx_queue_size="1024"',  # vhost-user <driver> attribute
        '<mtu size="1500"/>',  # vhost-user child
        'cache="none"',  # disk <driver> attribute
        "<log file=",  # serial child
        "<smbios mode=",  # os child
        "<nova:flavor",  # metadata
        "<rng model=",  # unmodelled device
        '<stats period="10"/>',  # memballoon child
    ],
)
def test_rendering_a_foreign_domain_keeps_what_rtkvm_does_not_model(
    kept: str, samples: Path
) -> None:
    assert kept in parse_domain((samples / "nova_rt.xml").read_text()).to_xml()


def test_an_empty_cdrom_is_kept_verbatim() -> None:
    xml = (
        "<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>1</vcpu><devices>"
        "<disk type='file' device='cdrom'><source/><target dev='hdc' bus='ide'/></disk>"
        "</devices></domain>"
    )
    domain = parse_domain(xml)
    assert domain.devices.disks == ()
    assert domain.devices.tag_count("disk") == 1
    assert parse_domain(domain.to_xml()) == domain
