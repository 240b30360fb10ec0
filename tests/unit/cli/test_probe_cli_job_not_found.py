"""`snowvault job describe ID` of an id that is no job says so for both kinds (helper Q's
new-user walk: it said "restore job not found", though the user never said restore)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.fake_api import ENV, FakeApi
from snowvault.interfaces.cli import client, main


def _missing(kind: str) -> Any:
    def answer(params: dict[str, Any]) -> dict[str, Any]:
        raise client.api_error("ResourceNotFoundException", f"{kind} job not found: nope")

    return answer


def test_an_unknown_job_id_is_neither_a_backup_nor_a_restore_job(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(
        {"describe_backup_job": _missing("backup"), "describe_restore_job": _missing("restore")}
    )
    for name, value in ENV.items():  # main() reads the real environment and client.Api
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(client, "Api", lambda profile: api)
    assert main.main(["job", "describe", "nope"]) == 3  # not found
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no backup or restore job" in line and "nope" in line, line
    assert "restore job not found" not in line
    assert api.names() == ["describe_backup_job", "describe_restore_job"]
