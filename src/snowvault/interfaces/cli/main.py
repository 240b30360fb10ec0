"""The ``snowvault`` command: one module per command group, each named in one table here
and imported only when the command line names it."""

from __future__ import annotations

import importlib
import sys

import click

from snowvault import __version__
from snowvault.engine import malloc_tuning
from snowvault.interfaces.cli import errors

_COMMANDS: dict[str, tuple[str, str]] = {
    "repo": ("repo_cmd", "repo"),
    "vault": ("vault_cmd", "vault"),
    "resource": ("resource_cmd", "resource"),
    "backup": ("backup_cmd", "backup"),
    "job": ("job_cmd", "job"),
    "recovery-point": ("recovery_point_cmd", "recovery_point"),
    "restore": ("restore_cmd", "restore"),
    "copy": ("copy_cmd", "copy"),
    "iam": ("iam_cmd", "iam"),
    "plan": ("plan_cmd", "plan"),
    "selection": ("selection_cmd", "selection"),
    "quickstart": ("quickstart_cmd", "quickstart"),
    "init": ("server_cmd", "init"),
    "server": ("server_cmd", "server"),
    "run": ("server_cmd", "run"),
    "root-key": ("root_key_cmd", "root_key"),
    "trail": ("trail_cmd", "trail"),
    "cost": ("cost_cmd", "cost"),
    "agent": ("agent_cmd", "agent"),
}
"""Every command group, in one place: its name, its module under interfaces/cli and the
click object in it."""


class _Commands(click.Group):
    """The top-level group: a command's module is imported when the command line names
    it (or help lists them all), not every module at start. Importing them all cost
    each command ~0.2 s before it began (``repo backup`` with no change is ~2 s)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module = importlib.import_module(f"snowvault.interfaces.cli.{where[0]}")
        command: click.Command = getattr(module, where[1])
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snowvault")
def cli() -> None:
    """snowvault: self-hosted backups that speak the AWS Backup API."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors become one line on stderr and an exit code from errors.EXIT_CODES."""
    malloc_tuning.fix_mmap_threshold()
    try:
        cli.main(args=argv, prog_name="snowvault", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except Exception as exc:  # translated once, here
        code = errors.exit_code(exc)
        if code is None and isinstance(exc, OSError) and exc.strerror:
            # the local file system refused (a name too long, no space, no permission)
            where = f": {exc.filename}" if exc.filename is not None else ""
            click.echo(f"snowvault: error: {exc.strerror}{where}", err=True)
            return errors.OTHER
        if code is None:
            raise
        click.echo(f"snowvault: error: {errors.in_flag_terms(str(exc))}", err=True)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
