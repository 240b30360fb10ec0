"""config.json's issue-16 keys: ``trail`` (the audit trail on or off) and
``integrity_days`` (every pack read within that many days); bad values are refused with
a one-line InvalidInput, defaults are not written back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snowvault.app import ServerConfig
from snowvault.core.errors import InvalidInput

BASE: dict[str, Any] = {
    "catalog_url": "sqlite:///x.db",
    "regions": {"us-east-1": "/tmp/s"},
    "default_region": "us-east-1",
}


def test_defaults_are_on_and_thirty_days_and_not_written_back(tmp_path: Path) -> None:
    config = ServerConfig.from_dict(tmp_path, dict(BASE))
    assert config.trail is True and config.integrity_days == 30
    assert "trail" not in config.to_dict() and "integrity_days" not in config.to_dict()


def test_set_values_round_trip(tmp_path: Path) -> None:
    config = ServerConfig.from_dict(tmp_path, {**BASE, "trail": False, "integrity_days": 7})
    assert (config.trail, config.integrity_days) == (False, 7)
    again = ServerConfig.from_dict(tmp_path, config.to_dict())
    assert (again.trail, again.integrity_days) == (False, 7)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trail", "no"),
        ("trail", 0),
        ("integrity_days", 0),
        ("integrity_days", "30"),
        ("integrity_days", True),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=f"{key}: expected"):
        ServerConfig.from_dict(tmp_path, {**BASE, key: value})
