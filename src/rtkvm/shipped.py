"""The knowledge rtkvm ships as TOML under ``rtkvm/data``: read it, parse it, say where it broke.

Every loader of shipped data (tuning profiles, doctor checks, kernel
arguments, guest audit rules, runtime, image and data-plane settings) reads
its file with :func:`shipped_text` and parses text (shipped, or a user's
file) with :func:`parse_toml`, so a broken file always names itself. This
module must not interpret a table: each loader turns it into its own typed
value.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from rtkvm.errors import DataError, RtkvmError

DATA_DIR = "data"


def shipped_text(name: str) -> str:
    """The text of ``rtkvm/data/NAME`` (``NAME`` may be ``profiles/realtime.toml``)."""
    return resources.files("rtkvm").joinpath(DATA_DIR, *name.split("/")).read_text("utf-8")


def shipped_names(folder: str, suffix: str = ".toml") -> list[str]:
    """Names (without ``suffix``) of the files shipped in ``rtkvm/data/FOLDER``."""
    files = resources.files("rtkvm").joinpath(DATA_DIR, folder).iterdir()
    return sorted(f.name[: -len(suffix)] for f in files if f.name.endswith(suffix))


def has_shipped(name: str) -> bool:
    return resources.files("rtkvm").joinpath(DATA_DIR, *name.split("/")).is_file()


def parse_toml(text: str, source: str, error: type[RtkvmError] = DataError) -> dict[str, Any]:
    """The table of a TOML text; ``error`` naming ``source`` when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML ({exc})") from None
