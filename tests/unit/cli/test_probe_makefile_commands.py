"""Every `snowvault ...` command the Makefile runs exists (helper Q's new-user walk:
`make demo` ran `snowvault demo`, a command that never existed, since the first commit)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from snowvault.interfaces.cli import main

MAKEFILE = Path(__file__).resolve().parents[3] / "Makefile"


def _invoked() -> list[list[str]]:
    """The words after ``$(BIN)/snowvault`` in each recipe line, up to the first option."""
    found = []
    for line in MAKEFILE.read_text().splitlines():
        match = re.search(r"\$\(BIN\)/snowvault((?:\s+[a-z][a-z-]*)+)", line)
        if match and line.startswith("\t"):
            found.append(match.group(1).split())
    return found


def test_the_makefile_runs_only_commands_that_exist() -> None:
    invoked = _invoked()
    assert ["run"] in invoked  # the parse sees `make run`'s own line
    for words in invoked:
        group: click.Command = main.cli
        for word in words:
            if not isinstance(group, click.Group):
                break
            command = group.commands.get(word)
            assert command is not None, f"Makefile runs `snowvault {' '.join(words)}`"
            group = command
