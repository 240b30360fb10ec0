"""Service tests: a SQLite catalog in a temp dir, local vault storage, a FakeClock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.services import accounts
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.engine import crypto
from snowvault.testing import FakeClock, ServerVaultKeys

ROOT = b"k" * 32
REGION = "us-east-1"


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.db.upgrade(engine)
    storage = Storage({REGION: str(tmp_path / "storage" / REGION)})
    paths = host_paths.Policy.build(  # sources and targets live in tmp_path, storage never
        [str(tmp_path)], [], [str(tmp_path / "storage")], os.path.realpath
    )
    yield Deps(engine, clock, storage, ServerVaultKeys(ROOT), path_policy=paths)
    engine.dispose()


@pytest.fixture
def access_box() -> crypto.SecretBox:
    """The box the root key seals access-key secrets with."""
    return crypto.SecretBox(ROOT, "access-keys")


@pytest.fixture
def root(deps: Deps, access_box: crypto.SecretBox) -> accounts.Credentials:
    return accounts.bootstrap(
        deps.engine, access_box, now=deps.clock.now(), account_id="111122223333"
    )


@pytest.fixture
def caller(deps: Deps, root: accounts.Credentials) -> Caller:
    return Caller(root.account_id, REGION, root.principal_arn, deps.clock.now())
