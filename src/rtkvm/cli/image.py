"""``rtkvm image ...``: build and show the PREEMPT_RT guest image."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rtkvm.image.build import DEFAULT_CACHE, DEFAULT_OUTPUT, build_image, load_manifest
from rtkvm.image.debian_rt import DEFAULT_OUTPUT as DEBIAN_RT_OUTPUT
from rtkvm.image.debian_rt import build_debian_rt

cache_option = click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CACHE,
    show_default=True,
    help="Where downloaded Debian packages are kept.",
)
output_option = click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Where vmlinuz, initramfs.cpio.gz and manifest.json are written.",
)


@click.group()
def image() -> None:
    """Guest images: rtkvm's PREEMPT_RT probe (kernel + initramfs with busybox and
    cyclictest) and the Debian 12 RT disk image for tenants."""


@image.command("build")
@click.option(
    "--kind",
    type=click.Choice(["probe", "debian-rt"]),
    default="probe",
    show_default=True,
    help="probe: rtkvm's proof kernel + initramfs (busybox, cyclictest); debian-rt: a whole "
    "Debian 12 RT system on a bootable qcow2 disk, for tenants (upload it with "
    "`rtkvm cloud image create`).",
)
@cache_option
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where the image and manifest.json are written (default {DEFAULT_OUTPUT} for the "
    f"probe, {DEBIAN_RT_OUTPUT} for debian-rt).",
)
@click.option("--mirror", default=None, help="debian-rt: the Debian mirror (default the data's).")
@click.option("--refresh", is_flag=True, help="probe: download the packages again.")
@click.option("--rebuild", is_flag=True, help="Assemble again even if nothing changed.")
def build(
    kind: str, cache: Path, output: Path | None, mirror: str | None, refresh: bool, rebuild: bool
) -> None:
    """Build an image from Debian packages (cached: unchanged inputs are not built again)."""
    if kind == "debian-rt":
        disk = build_debian_rt(
            output or DEBIAN_RT_OUTPUT,
            cache,
            mirror=mirror,
            rebuild=rebuild,
            say=lambda line: click.echo(f"debian-rt: {line}", err=True),
        )
        click.echo(f"disk       {disk.path} (qcow2, {disk.virtual_size_bytes} bytes virtual)")
        click.echo(f"kernel     {disk.kernel_release}")
        click.echo(f"sha256     {disk.sha256}")
        click.echo(f"packages   {len(disk.packages)}")
        verb = "unchanged  same inputs as the last build" if disk.reused else "built in  "
        click.echo(f"{verb} ({disk.seconds:.1f}s)")
        return
    built = build_image(cache, output or DEFAULT_OUTPUT, refresh=refresh, rebuild=rebuild)
    fetched = ", ".join(built.downloaded) or "none (all cached)"
    click.echo(f"kernel     {built.kernel} ({built.kernel_release})")
    click.echo(f"initramfs  {built.initramfs}")
    click.echo(f"sha256     {built.initramfs_sha256}")
    click.echo(f"downloaded {fetched}")
    if built.reused:
        click.echo(f"unchanged  same inputs as the last build ({built.seconds:.1f}s)")
    else:
        click.echo(f"built in   {built.seconds:.1f}s")


@image.command("show")
@output_option
def show(output: Path) -> None:
    """Print the manifest of the built image."""
    click.echo(json.dumps(load_manifest(output), indent=2))
