"""The CLI's start-up stays light: registering every command group imports no heavy stack.

Each check runs in a fresh interpreter (``sys.modules`` of the test process is shared
with every other test), imports the CLI, runs a command's ``--help`` and prints which of
the heavy packages got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "sqlalchemy", "alembic", "snowvault.app", "uvicorn", "starlette")

_PROBE = """
import json, sys
from snowvault.interfaces.cli import main
code = main.main({argv!r})
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": [m for m in heavy if m in sys.modules]}}))
"""


def _loaded_after(argv: list[str]) -> dict[str, object]:
    probe = _PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    doc: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return doc


@pytest.mark.parametrize("argv", [["repo", "--help"], ["repo", "check", "--help"]])
def test_repo_commands_import_neither_boto3_nor_sqlalchemy(argv: list[str]) -> None:
    doc = _loaded_after(argv)
    assert doc["code"] == 0
    assert doc["loaded"] == []


def test_top_level_help_imports_no_heavy_stack() -> None:
    doc = _loaded_after(["--help"])
    assert doc["code"] == 0
    assert doc["loaded"] == []


def test_error_table_still_covers_the_client_errors() -> None:
    from snowvault.interfaces.cli import client, errors

    assert errors.exit_code(client.ServerUnreachable(endpoint="http://x", detail="down")) == 7
    assert errors.exit_code(client.ApiNotFound(code="ResourceNotFoundException", detail="x")) == 3
    assert (
        errors.exit_code(
            client.JobUnsuccessful(kind="backup", job_id="j", state="FAILED", reason="r")
        )
        == 10
    )
