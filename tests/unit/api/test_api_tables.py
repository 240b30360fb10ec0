"""The error table covers every error class; the coverage page lists every operation."""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import pytest

from snowvault.core import errors as core_errors
from snowvault.engine import errors as engine_errors
from snowvault.interfaces.api import asgi, coverage, errors, model


def _error_classes() -> list[type[BaseException]]:
    return [
        cls
        for module in (core_errors, engine_errors)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, core_errors.SnowvaultError) and cls.__module__ == module.__name__
    ]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_its_own_entry(cls: type[BaseException]) -> None:
    code, status = errors.ERROR_TABLE[cls]
    assert code.endswith("Exception")
    assert status in (400, 403, 500)


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


def test_unknown_exceptions_hide_their_details() -> None:
    err = errors.to_api_error(RuntimeError("db password is hunter2"))
    assert (err.code, err.status) == ("InternalFailure", 500)
    assert "hunter2" not in err.message


def test_later_layers_register_in_one_place() -> None:
    class VaultLocked(core_errors.Conflict):
        """vault {name} is locked"""

    table = errors.build_error_table({VaultLocked: ("InvalidResourceStateException", 400)})
    assert errors.to_api_error(VaultLocked(name="v"), table).code == "InvalidResourceStateException"
    assert errors.to_api_error(VaultLocked(name="v")).code == "InvalidRequestException"
    with pytest.raises(ValueError, match="already mapped"):
        errors.build_error_table({core_errors.NotFound: ("Other", 400)})


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
