"""`rtkvm openstack image upload` and `rtkvm openstack measure`: proof inside Nova's servers.

``image upload`` puts rtkvm's probe guest (PREEMPT_RT kernel, initramfs with
cyclictest) into Glance with the command line that runs cyclictest on the
flavor's RT vCPUs at every boot. ``measure`` reads a finished run from Nova's
console on the server's compute host, verifies the threads at that moment,
and prints or saves it in the shape ``rtkvm report build`` reads beside
rtkvm's own servers. Thin: the work is in :mod:`rtkvm.openstack`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Literal, cast

import click

from rtkvm.cli.common import agent_ledger, node_plan_option, rtkvm_api_options
from rtkvm.cli.openstack_flavor import cloud_options
from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost
from rtkvm.footprint import IMAGE_DIR, KVM_PROBE_FILE
from rtkvm.guest.create import Image
from rtkvm.guest.run import CyclictestParams
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.measure.report import entry_warnings, load
from rtkvm.openstack.images import probe_cmdline, upload_probe
from rtkvm.openstack.measure import measure_server
from rtkvm.openstack.session import CloudSession
from rtkvm.runtime.facts import runtime_facts
from rtkvm.wire.rtguest import GuestMeasurementIn

image_dir_option = click.option(
    "--image-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(IMAGE_DIR.path),
    show_default=True,
    help="rtkvm's guest image (rtkvm image build).",
)


def _facts(image_dir: Path, accel: str):  # type: ignore[no-untyped-def]
    image = Image(image_dir / "vmlinuz", image_dir / "initramfs.cpio.gz")
    return runtime_facts(
        HostFS("/"),
        image.kernel,
        image.initramfs,
        want=cast(Literal["auto", "kvm", "tcg"], accel),
        probe_cache=Path(KVM_PROBE_FILE.path),
    )


def measure_commands(group: click.Group) -> None:
    @group.group("image")
    def image() -> None:
        """rtkvm's probe guest in Glance."""

    @image.command("upload")
    @click.option("--name", default="rtkvm-probe", show_default=True)
    @click.option("--vcpus", type=click.IntRange(min=1), default=2, show_default=True)
    @click.option(
        "--rt-vcpus", default="1", show_default=True, help="The flavor's RT vCPUs (its mask)."
    )
    @click.option("--loops", type=click.IntRange(min=1), default=2000, show_default=True)
    @click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto")
    @image_dir_option
    @cloud_options
    def image_upload(
        name: str,
        vcpus: int,
        rt_vcpus: str,
        loops: int,
        accel: str,
        image_dir: Path,
        os_cloud: str,
        os_config_file: Path | None,
    ) -> None:
        """Upload the probe guest: kernel (aki), initramfs (ari) and its boot image (ami)."""
        rt = CpuSet.parse(rt_vcpus)
        if not rt or max(rt) >= vcpus:
            raise click.BadParameter(
                f"{rt_vcpus}: give vCPUs below {vcpus}", param_hint="--rt-vcpus"
            )
        facts = _facts(image_dir, accel)
        cmdline = probe_cmdline(
            vcpus, rt, accel=facts.accel, cyclictest=CyclictestParams(loops=loops)
        )
        made = upload_probe(
            CloudSession(os_cloud, os_config_file),
            name,
            image_dir / "vmlinuz",
            image_dir / "initramfs.cpio.gz",
            cmdline,
        )
        state = "uploaded" if made.created else "already in Glance"
        click.echo(
            f"{made.name}: {state} (image {made.image_id}, kernel {made.kernel_id}, "
            f"ramdisk {made.ramdisk_id})"
        )
        click.echo(f"  command line: {made.cmdline}")

    @group.command("measure")
    @click.argument("server")
    @cloud_options
    @node_plan_option
    @click.option("--fresh", is_flag=True, help="Hard-reboot the server first (a new run).")
    @click.option("--timeout", type=float, default=180.0, show_default=True)
    @click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None)
    @click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto")
    @image_dir_option
    @rtkvm_api_options
    def measure(
        server: str,
        os_cloud: str,
        os_config_file: Path | None,
        plan_file: Path,
        fresh: bool,
        timeout: float,
        save: Path | None,
        accel: str,
        image_dir: Path,
        rtkvm_url: str,
        agent_token_file: Path | None,
        ca_file: str | None,
    ) -> None:
        """cyclictest inside a Nova server booted from the probe image (on its compute host).

        With --agent-token-file the result is kept in rtkvm's API, beside the guest's
        RT verdict (`rtkvm cloud guest show SERVER_ID`)."""
        ledger = agent_ledger(rtkvm_url, agent_token_file, ca_file)
        fs = HostFS("/")
        facts = _facts(image_dir, accel)
        result = measure_server(
            CloudSession(os_cloud, os_config_file),
            server,
            this_host=socket.gethostname(),
            fs=fs,
            host=AuditHost.from_plan(PartitionPlan.load(plan_file), read_topology(fs)),
            quirks={q.id for q in facts.quirks if q.present},
            fresh=fresh,
            timeout=timeout,
        )
        text = json.dumps(result, indent=2) + "\n"
        if save is not None:
            save.write_text(text, "utf-8")
        for t in result["latency"]["threads"]:
            click.echo(
                f"{result['guest']} on {result['host']} ({result['accel']}), thread "
                f"{t['thread']}: cyclictest max {t['max_us']} us, avg {t['avg_us']} us, "
                f"{t['in_histogram'] + t['overflows']} samples"
            )
        click.echo(f"  rtkvm: {result['rt_verdict']}")
        for warning in (w for e in load(result, "measurement") for w in entry_warnings(e)):
            click.echo(f"WARNING: {warning}", err=True)
        if save is not None:
            click.echo(f"saved to {save} (rtkvm report build {save} ...)")
        if ledger is not None:
            kept = ledger.report_guest_measurement(
                GuestMeasurementIn(
                    server_id=result["server_id"],
                    server_name=result["guest"].removeprefix("nova:")[:255],
                    kind="cyclictest",
                    result=result,
                )
            )
            click.echo(f"kept in rtkvm's API as measurement {kept.id} of {kept.server_id}")
