"""Acceptance fixtures: a real `snowvault server --test-mode` SUBPROCESS per test module.

def test_x(snowvault_server, backup, ext):
    backup.list_backup_vaults()                       # boto3, signed with the root key
    ext("RegisterResource", {...})                    # extension API, SigV4 "snowvault"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers.sv_server import (
    SNOWVAULT,
    ExtCall,
    ServerProcess,
    free_port,
    new_server,
)

__all__ = ["SNOWVAULT", "ExtCall", "ServerProcess", "free_port", "new_server"]  # re-exported


@pytest.fixture(scope="module")
def snowvault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running `snowvault server --test-mode`, shared by one test module."""
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    failures = [line for line in server.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


@pytest.fixture
def backup(snowvault_server: ServerProcess) -> Any:
    """A boto3 ``backup`` client signed with the root key."""
    return snowvault_server.client()


@pytest.fixture
def ext(snowvault_server: ServerProcess) -> ExtCall:
    return snowvault_server.ext
