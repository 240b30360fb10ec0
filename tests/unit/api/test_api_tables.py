"""The error tables cover every error class; the coverage page lists every operation.

The tree is walked from its root after importing every snowvault module, so a class
added anywhere without its entries fails here: its own row in the API's AWS-code table
(unless it is the CLI's client side, which never reaches the API) and in the CLI's
exit-code table.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import snowvault
from snowvault.control.catalog import pagination
from snowvault.control.model import host_paths
from snowvault.control.services import errors as service_errors
from snowvault.core import errors as core_errors
from snowvault.engine import errors as engine_errors
from snowvault.interfaces.api import asgi, coverage, errors, model
from snowvault.interfaces.cli import errors as cli_errors

CLI_ONLY = "snowvault.interfaces.cli."


def _error_tree() -> list[type[BaseException]]:
    """Every subclass of the root defined in the product, the root included."""
    for module in pkgutil.walk_packages(snowvault.__path__, "snowvault."):
        importlib.import_module(module.name)
    found: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [core_errors.SnowvaultError]
    while todo:
        cls = todo.pop()
        if cls not in found and cls.__module__.startswith("snowvault."):
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=cli_errors.class_name)


TREE = _error_tree()
SERVER_SIDE = [cls for cls in TREE if not cls.__module__.startswith(CLI_ONLY)]


def test_the_walk_reaches_every_layer() -> None:
    modules = {cls.__module__ for cls in TREE}
    assert {
        "snowvault.core.errors",
        "snowvault.engine.errors",
        "snowvault.control.services.errors",
        "snowvault.plugins.errors",
        "snowvault.interfaces.cli.client",
    } <= modules
    assert len(TREE) >= 60


@pytest.mark.parametrize("cls", SERVER_SIDE, ids=cli_errors.class_name)
def test_every_error_class_has_its_own_aws_code(cls: type[BaseException]) -> None:
    code, status = errors.ERROR_TABLE[cls]
    assert code.endswith("Exception")
    assert status in (400, 403, 500)


@pytest.mark.parametrize("cls", TREE, ids=cli_errors.class_name)
def test_every_error_class_has_its_own_exit_code(cls: type[BaseException]) -> None:
    assert cli_errors.EXIT_CODES[cli_errors.class_name(cls)] in range(1, 11)


def test_the_tables_hold_nothing_else() -> None:
    assert set(errors.ERROR_TABLE) == set(SERVER_SIDE)
    assert set(cli_errors.EXIT_CODES) == {cli_errors.class_name(cls) for cls in TREE}


def test_the_cli_chooses_exit_codes_without_loading_the_server() -> None:
    probe = "import sys, snowvault.interfaces.cli.main; print('sqlalchemy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
    assert cli_errors.exit_code(pagination.InvalidToken(detail="x")) == 2


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (service_errors.VaultLocked(detail="d"), "InvalidRequestException", 400),
        (service_errors.LegalHoldActive(detail="d"), "InvalidResourceStateException", 400),
        (service_errors.HoldNotCancelable(detail="d"), "InvalidResourceStateException", 400),
        (service_errors.PlanHasSelections(plan_id="p", count=1), "InvalidRequestException", 400),
        (service_errors.AccessDenied(detail="d"), "AccessDeniedException", 403),
        (service_errors.ReservedAlias(name="alias/aws/x"), "NotAuthorizedException", 400),
        (host_paths.PathRefused(path="/etc", detail="d"), "AccessDeniedException", 403),
        (pagination.InvalidToken(detail="d"), "InvalidParameterValueException", 400),
        (engine_errors.ShortRead(detail="d"), "DependencyFailureException", 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_codes_the_api_answers(exc: Exception, code: str, status: int) -> None:
    error = errors.to_api_error(exc)
    assert (error.code, error.status, error.message) == (code, status, str(exc))


def test_most_specific_class_wins_and_messages_pass_through() -> None:
    err = errors.to_api_error(engine_errors.ObjectNotFound(name="data/ab"))
    assert (err.code, err.status, err.message) == (
        "ResourceNotFoundException",
        400,
        "object not found: data/ab",
    )
    assert (
        errors.to_api_error(core_errors.Conflict(detail="busy")).code == "InvalidRequestException"
    )


def test_a_class_without_its_own_row_answers_its_family_code() -> None:
    class NotInTheTable(core_errors.NotFound):
        """thing {name} is gone"""

    assert errors.to_api_error(NotInTheTable(name="x")).code == "ResourceNotFoundException"
    assert cli_errors.exit_code(NotInTheTable(name="x")) == 3


def test_unknown_exceptions_hide_their_details() -> None:
    err = errors.to_api_error(RuntimeError("db password is hunter2"))
    assert (err.code, err.status) == ("InternalFailure", 500)
    assert "hunter2" not in err.message
    assert cli_errors.exit_code(RuntimeError("bug")) is None


def test_error_body_and_header_carry_the_code() -> None:
    err = errors.ApiError("ResourceNotFoundException", "no vault x")
    body = errors.error_body(err)
    assert body["__type"] == body["code"] == "ResourceNotFoundException"
    assert body["message"] == body["Message"] == "no vault x"
    assert errors.error_headers(err)["x-amzn-ErrorType"].split(":")[0] == err.code


def test_coverage_lists_every_operation() -> None:
    text = coverage.render({"backup": {"ListBackupVaults", "CreateBackupVault"}})
    ops = model.load("backup").operations
    assert f"2 of {len(ops)} operations implemented." in text
    assert "- [x] ListBackupVaults" in text
    assert "- [ ] ListFrameworks" in text
    assert sum(line.startswith("- [") for line in text.splitlines()) == len(ops)
    with pytest.raises(ValueError, match="NoSuchOperation"):
        coverage.render({"backup": {"NoSuchOperation"}})


def test_coverage_command_line(tmp_path: Path) -> None:
    out = tmp_path / "api-coverage.md"
    spec = "tests_api_coverage_fixture:ENDPOINTS"
    fixture = types.ModuleType("tests_api_coverage_fixture")
    fixture.ENDPOINTS = [asgi.ServiceEndpoint("kms", {"Encrypt": lambda ctx, p: {}})]  # type: ignore[attr-defined]
    sys.modules[fixture.__name__] = fixture
    try:
        assert coverage.main(["--handlers", spec, "--service", "backup", "--out", str(out)]) == 0
    finally:
        del sys.modules[fixture.__name__]
    text = out.read_text()
    assert "## backup" in text and "## kms" in text
    assert "- [x] Encrypt" in text
