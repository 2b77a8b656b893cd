"""``rtkvm guest design`` and ``rtkvm guest audit``: thin wrappers over rtkvm.domain.

``design`` reads a flavor (a JSON file, or Nova extra specs on the command
line), the host's plan and topology, and prints the libvirt domain XML (or
JSON with the placement and warnings); warnings and ignored extra specs go to
stderr. ``audit`` reads a domain (a file, or ``--domain NAME`` through
libvirt-python, imported only then) and prints the RT findings; exit status 0
rt-ready, 1 not, 2 bad input. No logic beyond choosing what to call and how
to print it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from rtkvm.cli.common import format_option, open_host, read_text
from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost, audit_domain
from rtkvm.domain.design import GuestBoot, HostQuirks, VhostUserNic, design_guest
from rtkvm.domain.spec import ParsedFlavor, from_extra_specs, load_flavor, parse_extra_spec_args
from rtkvm.domain.xml import parse_domain
from rtkvm.errors import CpuListError, InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology, read_topology
from rtkvm.serialize import to_jsonable

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _cpus(text: str, option: str) -> CpuSet:
    try:
        return CpuSet.parse(text)
    except CpuListError as exc:
        raise InputError(f"{option}: {exc}") from None


def parse_nic(text: str) -> VhostUserNic:
    """``/run/vhu0.sock,mac=52:54:00:00:00:01,mode=server,queues=2`` -> a NIC."""
    path, *opts = [part.strip() for part in text.split(",")]
    fields: dict[str, Any] = {"socket_path": path}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep or key not in ("mac", "mode", "queues"):
            raise InputError(
                f"--vhost-user {text!r}: bad option {opt!r}; use SOCKET[,mac=MAC]"
                "[,mode=server|client][,queues=N]"
            )
        if key == "mode" and value not in ("server", "client"):
            raise InputError(f"--vhost-user {text!r}: mode must be server or client")
        if key == "queues" and not value.isdigit():
            raise InputError(f"--vhost-user {text!r}: queues must be a number")
        fields[key] = int(value) if key == "queues" else value.lower() if key == "mac" else value
    return VhostUserNic(**fields)


def _flavor(
    flavor: Path | None, extra: tuple[str, ...], vcpus: int | None, ram: int | None
) -> ParsedFlavor:
    if flavor is not None and extra:
        raise InputError("give either --flavor FILE or --extra-spec KEY=VALUE, not both")
    if flavor is not None:
        return load_flavor(read_text(flavor, "flavor"), source=str(flavor))
    if not extra:
        raise InputError("give the flavor: --flavor FILE.json, or --extra-spec KEY=VALUE ...")
    if vcpus is None or ram is None:
        raise InputError("with --extra-spec, also give the flavor's --vcpus N and --ram MIB")
    return from_extra_specs(parse_extra_spec_args(extra), vcpus=vcpus, memory_mib=ram)


@click.command("design")
@click.option(
    "--flavor", "flavor_path", type=_FILE, help="RT flavor: rtkvm spec JSON or Nova flavor JSON."
)
@click.option(
    "--extra-spec",
    "-e",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Nova extra spec (hw:cpu_realtime=yes, ...) or rtkvm:* key; repeatable.",
)
@click.option("--vcpus", type=int, help="vCPUs of the flavor (with --extra-spec).")
@click.option(
    "--ram", type=int, metavar="MIB", help="Memory of the flavor in MiB (with --extra-spec)."
)
@click.option(
    "--plan",
    "plan_path",
    type=_FILE,
    required=True,
    help="The host's partition plan (rtkvm host plan --format json).",
)
@click.option(
    "--root",
    default="/",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Read the host topology from this tree.",
)
@click.option(
    "--allocated", default="", metavar="LIST", help="pCPUs already taken by other guests."
)
@click.option("--name", required=True, help="Domain name.")
@click.option("--uuid", default=None)
@click.option("--kernel", default=None, help="Direct kernel boot: kernel image path.")
@click.option("--initrd", default=None)
@click.option("--cmdline", default=None, help="Guest kernel command line.")
@click.option("--disk", default=None, help="Boot from this disk image instead of a kernel.")
@click.option(
    "--disk-format", type=click.Choice(["raw", "qcow2"]), default="raw", show_default=True
)
@click.option("--serial-log", default=None, help="Serial console to this file (default: a pty).")
@click.option(
    "--vhost-user",
    "nics",
    multiple=True,
    metavar="SOCKET[,mac=..,mode=..,queues=..]",
    help="A vhost-user NIC; repeatable.",
)
@click.option("--accel", type=click.Choice(["kvm", "tcg"]), default="kvm", show_default=True)
@click.option("--emulator", default="/usr/bin/qemu-system-x86_64", show_default=True)
@click.option(
    "--host-cannot-lock-memory",
    is_flag=True,
    help="This host's libvirt cannot lock guest memory (no CAP_SYS_RESOURCE).",
)
@click.option(
    "--allow-unlocked-memory",
    is_flag=True,
    help="If memory cannot be locked, drop <locked/> with a warning instead of refusing.",
)
@click.option(
    "--vhost-user-msix",
    type=click.Choice(["auto", "ok", "broken"]),
    default="auto",
    show_default=True,
    help="auto: MSI-X off (vectors=0) on vhost-user NICs under tcg.",
)
@click.option(
    "--no-hugepage-check", is_flag=True, help="Do not require free hugepages on the node."
)
@click.option(
    "--format", "-f", "fmt", type=click.Choice(["xml", "json"]), default="xml", show_default=True
)
def design_cmd(
    flavor_path: Path | None,
    extra: tuple[str, ...],
    vcpus: int | None,
    ram: int | None,
    plan_path: Path,
    root: str,
    allocated: str,
    name: str,
    uuid: str | None,
    kernel: str | None,
    initrd: str | None,
    cmdline: str | None,
    disk: str | None,
    disk_format: str,
    serial_log: str | None,
    nics: tuple[str, ...],
    accel: str,
    emulator: str,
    host_cannot_lock_memory: bool,
    allow_unlocked_memory: bool,
    vhost_user_msix: str,
    no_hugepage_check: bool,
    fmt: str,
) -> None:
    """Design the libvirt domain of a real-time guest and print it.

    The flavor comes from --flavor FILE.json (rtkvm's spec or a Nova flavor
    with vcpus, ram and extra_specs) or from --extra-spec KEY=VALUE with
    --vcpus and --ram. vCPUs are pinned into the plan's rt_vcpu CPUs.
    """
    parsed = _flavor(flavor_path, extra, vcpus, ram)
    for key in parsed.ignored:
        click.echo(f"rtkvm: note: extra spec {key!r} is not used by rtkvm", err=True)
    plan = PartitionPlan.load(plan_path)
    topology = read_topology(open_host(root))
    boot = GuestBoot(
        name=name,
        uuid=uuid,
        kernel=kernel,
        initrd=initrd,
        cmdline=cmdline,
        disk=disk,
        disk_format="qcow2" if disk_format == "qcow2" else "raw",
        serial_log=serial_log,
        nics=tuple(parse_nic(n) for n in nics),
        accel="tcg" if accel == "tcg" else "kvm",
        emulator=emulator,
    )
    quirks = HostQuirks(
        locked_memory=not host_cannot_lock_memory,
        vhost_user_msix_broken=None if vhost_user_msix == "auto" else vhost_user_msix == "broken",
    )
    design = design_guest(
        parsed.spec,
        plan,
        topology,
        boot,
        allocated=_cpus(allocated, "--allocated"),
        host=quirks,
        allow_unlocked_memory=allow_unlocked_memory,
        check_hugepages=not no_hugepage_check,
    )
    for warning in design.warnings:
        click.echo(f"rtkvm: warning: {warning}", err=True)
    if fmt == "json":
        out = {
            "name": name,
            "placement": to_jsonable(design.placement),
            "claimed": design.placement.claimed.format(),
            "warnings": list(design.warnings),
            "ignored_extra_specs": list(parsed.ignored),
            "xml": design.xml,
        }
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(design.xml, nl=False)


def _domain_xml(path: Path | None, name: str | None, uri: str) -> tuple[str, str]:
    if (path is None) == (name is None):
        raise InputError("give either DOMAIN.xml or --domain NAME")
    if path is not None:
        return read_text(path, "domain XML"), str(path)
    try:
        import libvirt  # lazily: only --domain needs it
    except ImportError:
        raise InputError(
            "--domain needs libvirt-python (pip install libvirt-python); "
            "or dump the XML with virsh dumpxml NAME and audit the file"
        ) from None
    try:
        conn = libvirt.openReadOnly(uri)
        try:
            return str(conn.lookupByName(name).XMLDesc(0)), f"domain {name}"
        finally:
            conn.close()
    except libvirt.libvirtError as exc:
        raise InputError(
            f"libvirt ({uri}): domain {name!r}: {exc} (see virsh -c {uri} list --all)"
        ) from None


def _topology(root: str | None) -> Topology | None:
    return read_topology(open_host(root)) if root is not None else None


@click.command("audit")
@click.argument("domain_path", required=False, type=_FILE, metavar="[DOMAIN.xml]")
@click.option("--domain", "domain_name", default=None, help="Audit this defined domain (libvirt).")
@click.option(
    "--connect",
    "uri",
    default="qemu:///system",
    show_default=True,
    help="libvirt URI for --domain.",
)
@click.option("--housekeeping", default=None, metavar="LIST", help="The host's housekeeping CPUs.")
@click.option("--plan", "plan_path", type=_FILE, default=None, help="The host's partition plan.")
@click.option(
    "--root",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Read the host's NUMA layout from this tree (default with --domain: /).",
)
@format_option
@click.option("--verbose", "-v", is_flag=True, help="Also say why each failed check matters.")
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    domain_path: Path | None,
    domain_name: str | None,
    uri: str,
    housekeeping: str | None,
    plan_path: Path | None,
    root: str | None,
    fmt: str,
    verbose: bool,
) -> None:
    """Check any libvirt domain against the real-time rules and the host partition.

    Exit status 0 when rt-ready, 1 when an error-severity rule fails, 2 on bad input.
    """
    if housekeeping is not None and plan_path is not None:
        raise InputError("give either --housekeeping LIST or --plan PLAN.json, not both")
    xml, source = _domain_xml(domain_path, domain_name, uri)
    domain = parse_domain(xml, source=source)
    topology = _topology(root if root is not None or domain_name is None else "/")
    if plan_path is not None:
        host = AuditHost.from_plan(PartitionPlan.load(plan_path), topology)
    elif housekeeping is not None:
        host = AuditHost(housekeeping=_cpus(housekeeping, "--housekeeping"), topology=topology)
    else:
        host = AuditHost(topology=topology)
    report = audit_domain(domain, host, subject=source)
    click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=verbose))
    ctx.exit(report.exit_code())
