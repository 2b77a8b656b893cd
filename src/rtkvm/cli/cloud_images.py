"""``rtkvm cloud image ...`` and ``keypair ...``: disk images, and the SSH keys of servers.

``create NAME --file F`` makes the image and uploads the file in one step;
the API finds the format with qemu-img (raw or qcow2, never from the file's
name) and refuses backing files, external data files and oversized disks
with the reason. ``keypair create NAME --public-key FILE`` imports a key of
the user's (a server created with ``--key-name`` gets it on its seed).
Thin: no decision here.
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


@click.group("keypair")
def keypair() -> None:
    """Your SSH public keys, by name (servers with an image get one on their seed)."""


@keypair.command("create")
@click.argument("name")
@click.option(
    "--public-key",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An OpenSSH public key file, e.g. ~/.ssh/id_ed25519.pub (never the private key).",
)
@format_option
@click.pass_context
def keypair_create(ctx: click.Context, name: str, source: Path, fmt: str) -> None:
    text = source.read_text("utf-8", errors="replace")
    show_one(plain(api_of(ctx).create_keypair(name, text)), fmt)


@keypair.command("list")
@format_option
@click.pass_context
def keypair_list(ctx: click.Context, fmt: str) -> None:
    show_list(plains(api_of(ctx).keypairs()), ("name", "type", "fingerprint"), fmt)


@keypair.command("show")
@click.argument("name")
@format_option
@click.pass_context
def keypair_show(ctx: click.Context, name: str, fmt: str) -> None:
    show_one(plain(api_of(ctx).keypair(name)), fmt)


@keypair.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def keypair_delete(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Delete keypairs (servers made with one keep their copy of the key)."""
    for name in names:
        api_of(ctx).delete("keypairs", name)
