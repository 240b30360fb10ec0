"""A newcomer's first hour: printed commands, names for ids, ARNs alone, sizes,
restore listings, errors in flag terms, quickstart re-runs (fake API, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowvault.interfaces.cli import server_cmd


def _venv(tmp_path: Path, *tools: str) -> str:
    bin_dir = tmp_path / "repo" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", *tools):
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return str(bin_dir / "python")


def test_printed_examples_use_the_venv_path_from_the_repository(tmp_path: Path) -> None:
    python = _venv(tmp_path, "aws", "snowvault")
    text = server_cmd._example("http://127.0.0.1:8765", python, str(tmp_path / "repo"))
    assert ".venv/bin/aws backup list-backup-vaults --endpoint-url http://127.0.0.1:8765" in text
    assert ".venv/bin/snowvault vault create my-vault" in text
    elsewhere = server_cmd._example("http://x", python, "/")
    assert f"{tmp_path}/repo/.venv/bin/snowvault vault list" in elsewhere


def test_no_aws_example_when_awscli_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _venv(tmp_path, "snowvault")
    monkeypatch.setenv("PATH", "/nonexistent")
    text = server_cmd._example("http://127.0.0.1:8765", python, str(tmp_path / "repo"))
    assert "aws " not in text
    assert ".venv/bin/snowvault vault list" in text
