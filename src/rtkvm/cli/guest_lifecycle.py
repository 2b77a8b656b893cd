"""``rtkvm guest create|start|stop|delete|list|verify|measure``: run RT guests on libvirt.

Thin: each command parses its options, calls the guest/runtime/image layers
and prints. Defaults are the real paths; every path is an option so that the
commands can run against temporary directories (tests, CI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, cast

import click

from rtkvm.cli.common import format_option, guest_boot_options, resolve_plan
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import GuestNic, port_for
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import DEFAULT_RUNDIR, LAYOUT_FILE, load_layout
from rtkvm.domain.design import VhostUserNic
from rtkvm.domain.spec import from_extra_specs, load_flavor, parse_extra_spec_args
from rtkvm.errors import GuestError, InputError
from rtkvm.guest import lifecycle
from rtkvm.guest.build import GuestBuilder
from rtkvm.guest.create import Image, default_spec, plan_guest
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.guest.netcmd import check_address
from rtkvm.guest.run import CyclictestParams, boot_and_wait_ready, measure_guest, verify_guest
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.image.build import load_manifest
from rtkvm.measure import cyclictest
from rtkvm.measure.report import TCG_WARNING
from rtkvm.runtime import kvmprobe
from rtkvm.runtime.facts import runtime_facts

uri_option = click.option(
    "--uri", default=lifecycle.DEFAULT_URI, show_default=True, help="libvirt connection URI."
)
name_argument = click.argument("name")


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.command("create")
@name_argument
@click.option(
    "--flavor",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Flavor file: rtkvm spec JSON or a Nova flavor with extra_specs.",
)
@click.option(
    "--extra-spec",
    "-e",
    "extra",
    multiple=True,
    help="Nova extra spec KEY=VALUE (with --vcpus/--memory); repeatable.",
)
@click.option("--vcpus", type=int, default=2, show_default=True)
@click.option("--memory", "memory_mib", type=int, default=256, show_default=True, help="MiB.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Partition plan JSON (rtkvm host plan); default: --housekeeping/--rt-cpus.",
)
@click.option("--housekeeping", default="0", show_default=True, help="Host housekeeping CPUs.")
@click.option("--rt-cpus", default=None, help="Host CPUs for RT vCPUs (default: the others).")
@guest_boot_options
@click.option(
    "--network",
    "networks",
    multiple=True,
    help="Unmanaged network for a vhost-user NIC (NIC 0, 1, ... in order), plugged into "
    "the rtkvm switch (rtkvm net up); repeatable.",
)
@click.option("--ip", "address", help="Static ADDR/PREFIX of the first NIC (no DHCP there).")
@click.option(
    "--net-rundir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUNDIR,
    show_default=True,
    help="Directory of the rtkvm switch the NICs are plugged into.",
)
@click.option("--dry-run", is_flag=True, help="Print the domain XML, define nothing.")
@click.option("--start", "start_now", is_flag=True, help="Start the guest after defining it.")
@uri_option
def create(
    name: str,
    flavor: Path | None,
    extra: tuple[str, ...],
    vcpus: int,
    memory_mib: int,
    plan_file: Path | None,
    housekeeping: str,
    rt_cpus: str | None,
    accel: str,
    image_dir: Path,
    guest_dir: Path,
    probe_cache: Path,
    networks: tuple[str, ...],
    address: str | None,
    net_rundir: Path,
    dry_run: bool,
    start_now: bool,
    uri: str,
) -> None:
    """Design an RT guest from a flavor and the host plan, and define it on libvirt."""
    if address is not None and not networks:
        raise InputError("--ip needs a NIC: give --network NET as well")
    if address is not None:
        check_address(address)  # before anything is plugged
    fs = HostFS("/")
    if flavor is not None:
        spec = load_flavor(flavor.read_text("utf-8"), source=str(flavor)).spec
    elif extra:
        parsed = from_extra_specs(parse_extra_spec_args(extra), vcpus=vcpus, memory_mib=memory_mib)
        spec = parsed.spec
    else:
        spec = default_spec(name, memory_mib)
    manifest = load_manifest(image_dir)
    image = Image(image_dir / "vmlinuz", image_dir / "initramfs.cpio.gz")
    want = cast(Literal["auto", "kvm", "tcg"], accel)
    if want != "tcg" and kvmprobe.needs_probe(fs, image.kernel, probe_cache):
        click.echo(
            "probing whether KVM boots a Linux guest here (at most "
            f"{kvmprobe.DEFAULT_TIMEOUT:.0f}s, once; cached in {probe_cache})",
            err=True,
        )
    facts = runtime_facts(fs, image.kernel, image.initramfs, want=want, probe_cache=probe_cache)
    if networks and not dry_run:
        with lifecycle.connect(uri) as conn:
            if lifecycle.exists(conn, name):  # its ports are plugged: leave them alone
                raise GuestError(f"a domain named {name!r} already exists: delete it first")
    plan = resolve_plan(plan_file, housekeeping, rt_cpus, lambda: read_topology(fs).online)

    def design(nics: tuple[VhostUserNic, ...]) -> str:
        created = plan_guest(
            name, spec, plan, read_topology(fs), image, list(facts.quirks), accel=facts.accel,
            guest_dir=guest_dir, nics=nics, address=address,
        )  # fmt: skip
        for message in (*facts.warnings, *created.warnings):
            _warn(message)
        return created.xml

    wanted = [GuestNic(name, index, network) for index, network in enumerate(networks)]
    if dry_run:  # the sockets the NICs would get; nothing is plugged or defined
        layout = load_layout(net_rundir) if wanted else None
        sockets = tuple(VhostUserNic(str(port_for(layout, n).socket)) for n in wanted if layout)
        click.echo(design(sockets))
        return
    dataplane = (
        OvsDpdkBackend(OvsDpdk(load_settings(), net_rundir, HostFS("/", writable=True)),
                       load_layout(net_rundir))
        if wanted else None
    )  # fmt: skip
    GuestBuilder(LibvirtHypervisor(uri), dataplane, say=click.echo).build(
        wanted, design, start=start_now
    )
    click.echo(f"defined {name} ({facts.accel}, kernel {manifest.get('kernel_release')})")
    if start_now:
        click.echo(f"started {name}")


@click.command("start")
@name_argument
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the guest image's ready marker on the serial console.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
@uri_option
def start(name: str, wait: bool, timeout: float, uri: str) -> None:
    """Start a guest (and wait until it is up)."""
    with lifecycle.connect(uri) as conn:
        if not wait:
            lifecycle.start(conn, name)
            click.echo(f"started {name}")
            return
        ready, _, _ = boot_and_wait_ready(conn, name, timeout)
        click.echo(f"started {name}: up in {ready.seconds:.1f}s ({ready.line})")
        if not ready.realtime:
            _warn("the guest kernel does not report /sys/kernel/realtime = 1")


@click.command("stop")
@name_argument
@click.option(
    "--graceful",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for an ACPI shutdown before powering off.",
)
@uri_option
def stop(name: str, graceful: float, uri: str) -> None:
    """Stop a guest."""
    with lifecycle.connect(uri) as conn:
        lifecycle.stop(conn, name, graceful_timeout=graceful)
    click.echo(f"stopped {name}")


@click.command("delete")
@name_argument
@click.option("--force", is_flag=True, help="Also delete a domain rtkvm did not create.")
@click.option(
    "--net-rundir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUNDIR,
    show_default=True,
    help="The rtkvm switch to unplug the guest's NICs from (skipped when it is not up).",
)
@uri_option
def delete(name: str, force: bool, net_rundir: Path, uri: str) -> None:
    """Stop and undefine a guest, remove its serial log and unplug its NICs."""
    with lifecycle.connect(uri) as conn:
        for item in lifecycle.delete(conn, name, force=force):
            click.echo(f"removed {item}")
    if not (net_rundir / LAYOUT_FILE).exists():
        return
    ovs = OvsDpdk(load_settings(), net_rundir, HostFS("/", writable=True))
    if ovs.pid("ovs-vswitchd") is not None:
        for port in OvsDpdkBackend(ovs, load_layout(net_rundir)).unplug_guest(name):
            click.echo(f"removed port {port}")


@click.command("list")
@click.option("--all", "everything", is_flag=True, help="Every domain, not only rtkvm's.")
@format_option
@uri_option
def list_(everything: bool, fmt: str, uri: str) -> None:
    """List guests."""
    with lifecycle.connect(uri) as conn:
        guests = lifecycle.list_guests(conn, everything=everything)
    if fmt == "json":
        click.echo(json.dumps([g.__dict__ for g in guests], indent=2))
        return
    click.echo(f"{'NAME':20} {'STATE':12} {'VCPUS':>5} {'MIB':>6} ACCEL")
    for g in guests:
        click.echo(f"{g.name:20} {g.state:12} {g.vcpus:>5} {g.memory_mib:>6} {g.accel}")


@click.command("verify")
@name_argument
@format_option
@uri_option
@click.option("--proc-root", default="/", show_default=True, help="Root of the host's /proc.")
def verify(name: str, fmt: str, uri: str, proc_root: str) -> None:
    """Check from /proc that vCPU and emulator threads run as designed."""
    with lifecycle.connect(uri) as conn:
        report = verify_guest(conn, HostFS(proc_root), name)
    click.echo(report.to_json() if fmt == "json" else report.render_table())
    raise SystemExit(report.exit_code())


@click.command("measure")
@name_argument
@click.option("--loops", "-l", type=int, default=2000, show_default=True)
@click.option("--interval", "-i", type=int, default=1000, show_default=True, help="µs.")
@click.option("--buckets", type=int, default=400, show_default=True, help="Histogram µs.")
@click.option("--priority", "-p", type=int, default=90, show_default=True)
@click.option("--timeout", type=float, default=300.0, show_default=True)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result with the full histogram as JSON here.",
)
@format_option
@uri_option
def measure(
    name: str,
    loops: int,
    interval: int,
    buckets: int,
    priority: int,
    timeout: float,
    save: Path | None,
    fmt: str,
    uri: str,
) -> None:
    """Boot the guest with cyclictest, verify its threads, collect the latency histogram."""
    params = CyclictestParams(loops, interval, buckets, priority)
    with lifecycle.connect(uri) as conn:
        m = measure_guest(conn, HostFS("/"), name, params, timeout=timeout)
    data = m.to_dict()
    if save is not None:
        save.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"guest {m.name}: booted in {m.boot_seconds:.1f}s under {m.accel}")
        click.echo(f"cyclictest {m.cyclictest_args} ({m.run_seconds:.1f}s)")
        click.echo(cyclictest.render(m.result))
        click.echo(m.verify.render_table())
    if m.accel == "tcg":
        _warn(TCG_WARNING)
    if m.result.overflowed:
        _warn("samples overflowed the histogram: no percentiles; raise --buckets")
    raise SystemExit(m.verify.exit_code())
