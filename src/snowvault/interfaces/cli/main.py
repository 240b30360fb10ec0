"""The ``snowvault`` command: one module per command group, registered here explicitly."""

from __future__ import annotations

import sys

import click

from snowvault import __version__
from snowvault.engine import malloc_tuning
from snowvault.interfaces.cli import errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snowvault")
def cli() -> None:
    """snowvault: self-hosted backups that speak the AWS Backup API."""


def _register() -> None:
    """Every command group, in one place (no registration by import side effect)."""
    from snowvault.interfaces.cli import repo_cmd

    cli.add_command(repo_cmd.repo)

    from snowvault.interfaces.cli import (
        backup_cmd,
        copy_cmd,
        iam_cmd,
        job_cmd,
        plan_cmd,
        quickstart_cmd,
        recovery_point_cmd,
        resource_cmd,
        restore_cmd,
        selection_cmd,
        vault_cmd,
    )

    for group in (
        vault_cmd.vault,
        resource_cmd.resource,
        backup_cmd.backup,
        job_cmd.job,
        recovery_point_cmd.recovery_point,
        restore_cmd.restore,
        copy_cmd.copy,
        iam_cmd.iam,
        plan_cmd.plan,
        selection_cmd.selection,
        quickstart_cmd.quickstart,
    ):
        cli.add_command(group)

    from snowvault.interfaces.cli import server_cmd

    for command in server_cmd.COMMANDS:
        cli.add_command(command)

    from snowvault.interfaces.cli import root_key_cmd

    cli.add_command(root_key_cmd.root_key)

    from snowvault.interfaces.cli import trail_cmd

    cli.add_command(trail_cmd.trail)

    from snowvault.interfaces.cli import cost_cmd

    cli.add_command(cost_cmd.cost)

    from snowvault.interfaces.cli import agent_cmd

    cli.add_command(agent_cmd.agent)


_register()


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
