"""An agent's reach (agent/runner.py ``_policy``): its --allow-path roots, less its
--deny-path entries and its own credentials file, which no backup reads and no restore
writes, contains or replaces (a restore over it, or a backup of it, would hand its keys
around)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowvault.agent import runner
from snowvault.control.model import host_paths
from snowvault.core.errors import PermissionDenied


def _options(root: Path, **more: object) -> runner.Options:
    return runner.Options("http://127.0.0.1:1", "h1", "us-east-1", "k", "s", (str(root),), **more)  # type: ignore[arg-type]


def test_denied_paths_and_the_credentials_file_are_out_of_reach(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "snowvault-data"
    creds = tmp_path / "srv" / "agent" / "creds.json"
    creds.parent.mkdir(parents=True)
    creds.write_text("{}")
    policy = runner._policy(
        _options(tmp_path / "srv", deny_paths=(str(data),), protect_paths=(str(creds),))
    )
    assert host_paths.check(str(tmp_path / "srv" / "photos"), policy, lambda p: p)
    for refused in (data / "vaults", data, creds, creds.parent, tmp_path / "srv"):
        with pytest.raises(PermissionDenied):
            host_paths.check(str(refused), policy, lambda p: p)


def test_without_them_the_allowed_root_is_all_there_is(tmp_path: Path) -> None:
    policy = runner._policy(_options(tmp_path))
    assert host_paths.check(str(tmp_path / "x"), policy, lambda p: p) == str(tmp_path / "x")
    with pytest.raises(PermissionDenied):
        host_paths.check("/etc/passwd", policy, lambda p: p)
