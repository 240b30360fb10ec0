"""Deps and a root caller for tests that drive the services directly: a catalog (SQLite
in ``base`` unless an engine is given), local storage per region under
``base/storage/<region>``, host paths allowed under ``base`` minus the storage, vault
keys, access keys and resource secrets all under one test root key.

    deps = service_world.make_deps(tmp_path, clock, regions=(EAST, WEST))
    caller = service_world.root_caller(deps, account_id="111122223333", region=EAST)
    ...
    deps.engine.dispose()
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.services import accounts
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.core.clock import Clock
from snowvault.engine import crypto
from snowvault.plugins.base import ResourcePlugin
from snowvault.plugins.registry import Registry
from snowvault.testing import ServerVaultKeys

ROOT = b"k" * 32
REGION = "us-east-1"
ACCOUNT = "111122223333"


def make_deps(
    base: Path | str,
    clock: Clock,
    *,
    regions: Sequence[str] = (REGION,),
    plugins: Sequence[ResourcePlugin] | None = None,
    engine: Engine | None = None,
    allow: Sequence[Path | str] = (),
) -> Deps:
    """Deps over ``base``; ``plugins`` None: the built-in ones; ``engine`` None: a new,
    upgraded SQLite catalog at ``base/catalog.db`` (a given engine must be upgraded);
    ``allow``: host paths allowed besides ``base``."""
    base = Path(base)
    if engine is None:
        engine = catalog.db.create_engine(f"sqlite:///{base / 'catalog.db'}")
        catalog.db.upgrade(engine)
    storage = base / "storage"
    allowed = [str(base), *map(str, allow)]
    policy = host_paths.Policy.build(allowed, [], [str(storage)], os.path.realpath)
    deps = Deps(
        engine,
        clock,
        Storage({region: str(storage / region) for region in regions}),
        ServerVaultKeys(ROOT),
        path_policy=policy,
        resource_secrets=crypto.SecretBox(ROOT, "resource-secrets"),
    )
    return deps if plugins is None else dataclasses.replace(deps, plugins=Registry(list(plugins)))


def access_keys() -> crypto.SecretBox:
    """The box access keys are sealed in (what accounts.bootstrap and iam take)."""
    return crypto.SecretBox(ROOT, "access-keys")


def root_caller(deps: Deps, *, account_id: str = ACCOUNT, region: str = REGION) -> Caller:
    """A new account's root (bootstrapped now), calling in ``region``."""
    now = deps.clock.now()
    root = accounts.bootstrap(deps.engine, access_keys(), now=now, account_id=account_id)
    return Caller(root.account_id, region, root.principal_arn, now)
