"""``rtkvm cloud image create | list | show | delete``: the cloud's disk images.

``create NAME --file F`` makes the image and uploads the file in one step;
the API finds the format with qemu-img (raw or qcow2, never from the file's
name) and refuses backing files, external data files and oversized disks
with the reason. Thin: no decision here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from rtkvm.cli.cloud_conn import api_of
from rtkvm.cli.cloud_format import format_option, plain, plains, show_list, show_one
from rtkvm.errors import CloudError

IMAGE_COLUMNS = (
    "id",
    "name",
    "project",
    "shared",
    "status",
    "disk_format",
    "size_bytes",
    "virtual_size_bytes",
    "in_use",
)


@click.group("image")
def image() -> None:
    """Disk images servers boot (copy-on-write disks of them)."""


@image.command("create")
@click.argument("name")
@click.option(
    "--file",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A raw or qcow2 disk image (the format is detected, not taken from the name).",
)
@click.option("--shared", is_flag=True, help="Admins: every project may boot it.")
@click.option("--project", default=None, help="Admins: the project that owns it.")
@format_option
@click.pass_context
def image_create(
    ctx: click.Context, name: str, source: Path, shared: bool, project: str | None, fmt: str
) -> None:
    """Upload a disk image; exits 1 with the reason when the API refuses it (the refused
    image is deleted again, so its name is free)."""
    api = api_of(ctx)
    made = api.create_image(name, shared=shared, project=project)
    try:
        done = api.upload_image(made.id, source)
    except CloudError:
        with contextlib.suppress(CloudError):  # the refusal is what the user must see
            api.delete("images", made.id)
        raise
    show_one(plain(done), fmt)


@image.command("list")
@format_option
@click.pass_context
def image_list(ctx: click.Context, fmt: str) -> None:
    show_list(plains(api_of(ctx).images()), IMAGE_COLUMNS, fmt)


@image.command("show")
@click.argument("ref")
@format_option
@click.pass_context
def image_show(ctx: click.Context, ref: str, fmt: str) -> None:
    show_one(plain(api_of(ctx).image(ref)), fmt)


@image.command("delete")
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def image_delete(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Delete images no server uses (the API refuses one in use, saying by how many)."""
    for ref in refs:
        api_of(ctx).delete("images", ref)
