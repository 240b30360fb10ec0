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
            command = group.get_command(click.Context(group), word)
            assert command is not None, f"Makefile runs `snowvault {' '.join(words)}`"
            group = command


def test_every_listed_command_loads_under_its_own_name() -> None:
    """The top-level group imports a command's module only when it is named: each name
    in its table loads a command of that name, and an unknown name is none."""
    ctx = click.Context(main.cli)
    names = main.cli.list_commands(ctx)
    assert {"repo", "run", "agent", "iam", "trail", "recovery-point"} <= set(names)
    for name in names:
        command = main.cli.get_command(ctx, name)
        assert command is not None and command.name == name, name
    assert main.cli.get_command(ctx, "no-such-command") is None
