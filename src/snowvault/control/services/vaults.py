"""Backup vaults: create (one engine repository each), describe, list, delete, open.

A vault lives at ``<region location>/<account>/<name>-<random suffix>``; its repository
secret sits in an external key slot wrapped by the vault's key (see vault_keys).
CreateBackupVault is idempotent on CreatorRequestId: the same name and request id give
back the vault created the first time.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from snowvault.control import catalog
from snowvault.control.services.base import Caller, Deps
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import AlreadyExists, SnowvaultError
from snowvault.engine.backends import base as backends
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import Repository

Record = dict[str, Any]


def vault_arn(region: str, account_id: str, name: str) -> str:
    return arns.build("backup", region, account_id, f"backup-vault:{name}")


def _storage_url(deps: Deps, caller: Caller, name: str) -> str:
    location = deps.storage.location(caller.region).rstrip("/")
    return f"{location}/{caller.account_id}/{name}-{ids.new_hex(4)}"


def create(
    deps: Deps,
    caller: Caller,
    name: str,
    *,
    tags: Mapping[str, str] | None = None,
    encryption_key_arn: str | None = None,
    creator_request_id: str | None = None,
) -> Record:
    """CreateBackupVault: a new repository, then its catalog row and tags."""
    existing = _find(deps, caller, name)
    if existing is not None:
        if creator_request_id and existing["creator_request_id"] == creator_request_id:
            return existing
        raise AlreadyExists(kind="backup vault", name=name)
    url = _storage_url(deps, caller, name)
    key_arn, key_type = deps.vault_keys.choose(
        region=caller.region, account_id=caller.account_id, requested=encryption_key_arn
    )
    backend = open_backend(url)
    try:
        repo = Repository.init(backend, wrapper=deps.vault_keys.wrapper(key_arn))
        repo.close()
        return _insert(deps, caller, name, url, (key_arn, key_type), repo, tags, creator_request_id)
    except BaseException:
        _destroy(backend)
        raise
    finally:
        backend.close()


def _insert(
    deps: Deps,
    caller: Caller,
    name: str,
    url: str,
    key: tuple[str, str],
    repo: Repository,
    tags: Mapping[str, str] | None,
    creator_request_id: str | None,
) -> Record:
    arn = vault_arn(caller.region, caller.account_id, name)
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.vaults.create(
            conn,
            arn=arn,
            account_id=caller.account_id,
            region=caller.region,
            name=name,
            creation_date=caller.now,
            storage_url=url,
            encryption_key_arn=key[0],
            encryption_key_type=key[1],
            creator_request_id=creator_request_id,
            repository_id=repo.config.id,
        )
        catalog.tags.tag(conn, arn, dict(tags or {}))
    return row


def _find(deps: Deps, caller: Caller, name: str) -> Record | None:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.vaults.find(
            conn, account_id=caller.account_id, region=caller.region, name=name
        )


def get(deps: Deps, caller: Caller, name: str) -> Record:
    """DescribeBackupVault's row; raises NotFound."""
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.vaults.get(
            conn, account_id=caller.account_id, region=caller.region, name=name
        )


def list_vaults(
    deps: Deps,
    caller: Caller,
    *,
    vault_type: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.vaults.list_vaults(
            conn,
            account_id=caller.account_id,
            region=caller.region,
            vault_type=vault_type,
            limit=limit,
            token=token,
        )


def delete(deps: Deps, caller: Caller, name: str) -> None:
    """DeleteBackupVault: only an empty vault (InvalidRequestException otherwise)."""
    vault = get(deps, caller, name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.vaults.delete(conn, vault["arn"])
        catalog.settings.delete(conn, prune_key(vault["arn"]))
    backend = open_backend(vault["storage_url"])
    try:
        _destroy(backend)
    finally:
        backend.close()


def prune_key(arn: str) -> str:
    """The settings key that marks a vault as waiting for a background prune."""
    return f"prune-pending:{arn}"


def _destroy(backend: backends.Backend) -> None:
    """Delete every object of a repository (an empty vault, or one never registered)."""
    for info in list(backend.list()):
        with contextlib.suppress(SnowvaultError):
            backend.delete(info.name)


@contextmanager
def open_repository(deps: Deps, vault: Record) -> Iterator[Repository]:
    """The vault's engine repository, opened with the vault's key; closed afterwards."""
    backend = open_backend(vault["storage_url"])
    try:
        wrapper = deps.vault_keys.wrapper(vault["encryption_key_arn"])
        repo = Repository.open(backend, wrapper=wrapper)
        try:
            yield repo
        finally:
            repo.close()
    finally:
        backend.close()


def destroy_storage(deps: Deps, vault: Record) -> None:
    """Remove a vault's repository objects (test-mode reset)."""
    backend = open_backend(vault["storage_url"])
    try:
        _destroy(backend)
    finally:
        backend.close()


def all_vaults(deps: Deps) -> list[Record]:
    """Every vault of every account and region (reset, sweepers)."""
    out: list[Record] = []
    with catalog.db.transaction(deps.engine) as conn:
        for account in catalog.accounts.list_accounts(conn):
            for region in deps.storage.regions:
                token = None
                while True:
                    page = catalog.vaults.list_vaults(
                        conn, account_id=account["account_id"], region=region, token=token
                    )
                    out.extend(page.items)
                    token = page.next_token
                    if token is None:
                        break
    return out
