"""Bad inputs to the CLI found by helper Q's sweep (every command, every argument and
option given "", a 300-character name, a control character ...): each is one line and a
non-zero exit code, never a traceback nor a success.

- An empty id or name that the AWS model puts in the URL (``vault describe ''``, ``job
  describe ''``, ``copy describe ''``) made the request of the operation one level up
  (GET /backup-vaults/ is ListBackupVaults): a blank "description" and exit 0, or a
  KeyError traceback for ``copy describe``.
- A local file name the file system refuses (``init --data-dir`` or ``quickstart --dir``
  with a 300-character component) raised OSError as a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.fake_api import ENV
from snowvault.core import errors as core_errors
from snowvault.interfaces.cli import client, main


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("describe_backup_vault", {"BackupVaultName": ""}),
        ("describe_backup_job", {"BackupJobId": ""}),
        ("describe_copy_job", {"CopyJobId": ""}),
        ("describe_recovery_point", {"BackupVaultName": "v", "RecoveryPointArn": ""}),
    ],
)
def test_an_empty_url_label_is_refused_before_any_request(
    operation: str, params: dict[str, str]
) -> None:
    api = client.Api(client.Profile("http://127.0.0.1:9", "us-east-1", "AKTEST", "s", None))
    with pytest.raises(core_errors.InvalidInput, match="must not be empty"):
        api.call(operation, **params)  # nothing listens at :9: a request would be Unreachable


@pytest.mark.parametrize(
    "argv",
    [["vault", "describe", ""], ["job", "describe", ""], ["copy", "describe", ""]],
    ids=["vault", "job", "copy"],
)
def test_an_empty_name_is_one_line_and_invalid_input(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main.main([*argv, "--json"]) == 2  # invalid input
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("snowvault: error:") and "must not be empty" in line, line


def test_a_file_name_too_long_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    data_dir = tmp_path / ("x" * 300)
    assert main.main(["init", "--data-dir", str(data_dir), "--no-profile"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("snowvault: error:") and "File name too long" in line, line
