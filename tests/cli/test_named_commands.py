"""Every rtkvm command a message names (in backticks) exists.

Hints are the user's next step: one that names a command rtkvm does not have
(``rtkvm flavor list`` for ``rtkvm cloud flavor list``) sends them nowhere.
All string literals of the package are scanned, f-string parts included, and
each ```rtkvm WORDS`` is walked through the real command tree: after the
deepest group it reaches, the next word must be an option or an argument of a
command, never an unknown subcommand.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from rtkvm.cli.main import cli

SRC = Path(__file__).resolve().parents[2] / "src" / "rtkvm"
NAMED = re.compile(r"`rtkvm((?: [a-z][a-z0-9-]*)*)")


def _named() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for match in NAMED.finditer(node.value):
                    found.append((f"{path.relative_to(SRC)}:{node.lineno}", match.group(1)))
    return found


def _unknown(words: list[str]) -> str | None:
    """The first word that is no subcommand where one is expected, or None."""
    ctx = click.Context(cli)
    command: click.Command = cli
    for word in words:
        if not isinstance(command, click.Group):
            return None  # arguments of a command
        sub = command.get_command(ctx, word)
        if sub is None:
            return word
        command = sub
    return None


def test_every_named_command_exists() -> None:
    named = _named()
    assert len(named) > 50  # the scan sees the hints
    wrong = [
        f"{where}: `rtkvm{words}` ({word!r} is no command there)"
        for where, words in named
        if (word := _unknown(words.split())) is not None
    ]
    assert wrong == []


def test_the_check_catches_a_command_that_does_not_exist() -> None:
    assert _unknown(["flavor", "list"]) == "flavor"
    assert _unknown(["cloud", "quota", "set"]) == "quota"
    assert _unknown(["cloud", "flavor", "list"]) is None
    assert _unknown(["guest", "delete", "rtkvm-x"]) is None
