"""config.json values a server cannot run with are refused when it is read, in one
line naming the key (helper Q's probe: each of these started `snowvault server` into a
traceback: OverflowError from bind(), TypeError from the worker pool, ValueError from
the proxy list, the body limit and the metrics listener, RecursionError from the JSON)."""

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

BAD: list[tuple[str, Any]] = [
    ("port", 99999),
    ("port", 0),
    ("port", True),
    ("worker", {"threads": "x"}),
    ("worker", {"threads": -1}),
    ("worker", {"threads": 1.5}),
    ("worker", {"lease_seconds": "60"}),
    ("worker", {"poll_seconds": -1}),
    ("trusted_proxies", ["nope"]),
    ("max_body_bytes", -1),
    ("max_body_bytes", 0),
    ("metrics_address", "garbage"),
    ("metrics_address", "127.0.0.1:99999"),
    ("log_format", "xml"),
]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_a_value_no_server_runs_with_is_refused_naming_its_key(
    tmp_path: Path, key: str, value: Any
) -> None:
    with pytest.raises(InvalidInput, match=key):
        ServerConfig.from_dict(tmp_path, {**BASE, key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("port", 1),
        ("port", 65535),
        ("worker", {"threads": 4, "lease_seconds": 10}),
        ("worker", {"threads": 0, "poll_seconds": 0.2}),
        ("trusted_proxies", ["10.0.0.1", "10.1.0.0/16", "::1"]),
        ("metrics_address", "off"),
        ("metrics_address", "127.0.0.1:9765"),
        ("metrics_address", ""),
        ("log_format", "json"),
    ],
)
def test_good_values_pass(tmp_path: Path, key: str, value: Any) -> None:
    ServerConfig.from_dict(tmp_path, {**BASE, key: value})


def test_json_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[" * 5000)
    with pytest.raises(InvalidInput, match="cannot read"):
        ServerConfig.load(tmp_path)


@pytest.mark.parametrize("url", ["nope://", "garbage", "postgresql+nodriver://u@h/db"])
def test_a_catalog_url_sqlalchemy_cannot_use_is_invalid_input(url: str) -> None:
    from snowvault.control import catalog

    with pytest.raises(InvalidInput, match="catalog URL"):
        catalog.db.create_engine(url)
