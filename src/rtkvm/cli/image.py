"""``rtkvm image ...``: build and show the PREEMPT_RT guest image."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rtkvm.image.build import DEFAULT_CACHE, DEFAULT_OUTPUT, build_image, load_manifest

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
    """The PREEMPT_RT guest image (kernel + initramfs with busybox and cyclictest)."""


@image.command("build")
@cache_option
@output_option
@click.option("--refresh", is_flag=True, help="Download the packages again.")
@click.option("--rebuild", is_flag=True, help="Assemble again even if nothing changed.")
def build(cache: Path, output: Path, refresh: bool, rebuild: bool) -> None:
    """Build the image from Debian packages (cached; same packages give the same bytes)."""
    built = build_image(cache, output, refresh=refresh, rebuild=rebuild)
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
