"""`rtkvm openstack up | status | down`: the OpenStack all-in-one for tests, demos and trials.

Thin: options in, :class:`~rtkvm.openstack.aio.stack.OpenStackAio` does the
work, results out (text, or JSON with ``-f json``). ``up`` chooses Nova's virt
type and whether guests can lock their memory from rtkvm's runtime facts (the
KVM boot probe and the host's quirks), and says so as loudly as ``rtkvm up``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, cast

import click

from rtkvm.footprint import IMAGE_DIR, KVM_PROBE_FILE
from rtkvm.guest.create import Image
from rtkvm.hostfs import HostFS
from rtkvm.openstack.aio.stack import AioRequest, OpenStackAio
from rtkvm.runtime.facts import runtime_facts
from rtkvm.runtime.libvirtd import runtime_up


def _progress(fmt: str):  # type: ignore[no-untyped-def]
    def say(what: str) -> None:
        if fmt == "text":
            click.echo(f"... {what}", err=True)

    return say


def up_command(group: click.Group) -> None:
    @group.command("up")
    @click.option(
        "--plan",
        "plan_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A partition plan (rtkvm host plan -f json) [default: the last up's, else planned].",
    )
    @click.option(
        "--virt-type",
        type=click.Choice(["auto", "kvm", "qemu"]),
        default="auto",
        show_default=True,
        help="Nova's libvirt virt_type; auto: kvm when a guest boots under KVM here, else qemu.",
    )
    @click.option(
        "--image-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(IMAGE_DIR.path),
        show_default=True,
        help="rtkvm's guest image (rtkvm image build): the KVM boot probe boots it.",
    )
    @click.option(
        "--guest-hugepages",
        type=click.IntRange(min=0),
        default=None,
        help="2 MiB pages per RT NUMA node held for Nova's guests (reserved now, given back "
        "by down; hugetlbfs mounted if it is not) [default: as the last up, else 0].",
    )
    @click.option(
        "--switch",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The run directory of rtkvm's switch (`rtkvm net up --rundir`): Neutron's OVS "
        "agent and Nova's os-vif plug guests into it, with bridge mappings from its wiring "
        "[default: the last up's; none at first].",
    )
    @click.option("--no-switch", is_flag=True, help="Stop Neutron's agent; forget the switch.")
    @click.option("--timeout", type=float, default=300.0, show_default=True)
    @click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
    def up(
        plan_file: Path | None,
        virt_type: str,
        image_dir: Path,
        guest_hugepages: int | None,
        switch: Path | None,
        no_switch: bool,
        timeout: float,
        fmt: str,
    ) -> None:
        """Start a small OpenStack here (Keystone, Placement, Glance, Neutron, Nova) for rtkvm."""
        if switch is not None and no_switch:
            raise click.UsageError("give --switch DIR or --no-switch, not both")
        fs = HostFS("/")
        image = Image(image_dir / "vmlinuz", image_dir / "initramfs.cpio.gz")
        want = {"auto": "auto", "kvm": "kvm", "qemu": "tcg"}[virt_type]
        facts = runtime_facts(
            fs,
            image.kernel,
            image.initramfs,
            want=cast(Literal["auto", "kvm", "tcg"], want),
            probe_cache=Path(KVM_PROBE_FILE.path),
        )
        drop_locked = any(q.id == "no_cap_sys_resource" and q.present for q in facts.quirks)
        warnings = list(facts.warnings)
        warnings += [q.warning for q in facts.quirks if q.present and q.id == "kvm_unusable"]
        if drop_locked:
            warnings.append(
                "no CAP_SYS_RESOURCE: libvirt cannot lock guest memory here, so nova-compute "
                "leaves <locked/> out of RT guests (Nova always asks for it); guest memory "
                "can be paged out"
            )
        present = {q.id for q in facts.quirks if q.present}
        # nova-compute needs libvirtd (and virtlogd) up and set for RT guests, as rtkvm's own
        # agent does: `rtkvm runtime up`, idempotent (a fresh machine has neither running)
        runtime = runtime_up(HostFS("/", writable=True), present)
        warnings += runtime.warnings
        req = AioRequest(
            plan=plan_file,
            virt_type="kvm" if facts.accel == "kvm" else "qemu",
            drop_locked=drop_locked,
            guest_hugepages=guest_hugepages,
            switch=switch.resolve() if switch is not None else None,
            detach_switch=no_switch,
            no_msix="vhost_user_tcg_msix" in present,
            timeout=timeout,
        )
        stack = OpenStackAio(progress=_progress(fmt))
        result = stack.up(req)
        result.actions[:0] = [f"runtime: {a}" for a in runtime.actions]
        warnings += result.warnings
        if fmt == "json":
            doc = {
                "clouds_yaml": str(result.clouds_yaml),
                "cloud": result.cloud,
                "virt_type": req.virt_type,
                "actions": result.actions,
                "seconds": result.seconds,
                "warnings": warnings,
            }
            click.echo(json.dumps(doc, indent=2))
            return
        for action in result.actions:
            click.echo(f"  {action}")
        for warning in warnings:
            click.echo(f"WARNING: {warning}", err=True)
        phases = ", ".join(f"{k} {v:g} s" for k, v in result.seconds.items())
        click.echo(f"OpenStack is up (virt_type {req.virt_type}; {phases})")
        click.echo(f"export OS_CLIENT_CONFIG_FILE={result.clouds_yaml} OS_CLOUD={result.cloud}")


def status_command(group: click.Group) -> None:
    @group.command("status")
    @click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
    def status(fmt: str) -> None:
        """Which processes of the all-in-one run and which APIs answer; exit 1 unless all."""
        rows = OpenStackAio().status()
        healthy = all(r.pid is not None and r.answers is not False for r in rows)
        if fmt == "json":
            doc = [
                {"name": r.name, "pid": r.pid, "answers": r.answers, "log": str(r.log)}
                for r in rows
            ]
            click.echo(json.dumps({"healthy": healthy, "services": doc}, indent=2))
        else:
            for r in rows:
                state = "running" if r.pid is not None else "stopped"
                if r.answers is False and r.pid is not None:
                    state = "running, NOT ANSWERING"
                click.echo(f"{r.name:16} {state:24} {r.log}")
        if not healthy:
            raise SystemExit(1)


def down_command(group: click.Group) -> None:
    @group.command("down")
    @click.option(
        "--purge",
        is_flag=True,
        help="Also destroy the stack's Nova guests and remove its databases, images and logs.",
    )
    def down(purge: bool) -> None:
        """Stop the all-in-one (nova-compute first); keep its state unless --purge."""
        for s in OpenStackAio().down(purge=purge):
            took = f" in {s.seconds:.1f} s" if s.seconds else ""
            click.echo(f"{s.name}: {s.how}{took}")
        if purge:
            click.echo("purged: databases, images, instances and logs removed")
