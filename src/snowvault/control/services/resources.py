"""The resource inventory: register directories, list/describe/deregister, tag, and the
protected-resource views (ListProtectedResources, DescribeProtectedResource...).

A registered directory is ``arn:aws:snowvault:REGION:ACCOUNT:directory/NAME``; its
source is an absolute path to an existing directory on the server's host.

Abuse case: a caller with ``RegisterResource`` names a path the server will read with its
own (often root) rights and hand back through a restore. So the source is resolved
(symlinks, ``..``) and must pass the operator's host-path rule
(:mod:`snowvault.control.model.host_paths`, ``Deps.path_policy``) before anything else is
looked at (existence included, so refused paths are no probe); the resolved path is what
is stored, and the worker checks it again before it reads (``backup_jobs``).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.services import tagging
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import UnsupportedResourceType
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput, NotFound

Record = dict[str, Any]

SUPPORTED_TYPES = ("Directory",)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def resource_arn(region: str, account_id: str, resource_type: str, name: str) -> str:
    return arns.build("snowvault", region, account_id, f"{resource_type.lower()}/{name}")


def _check_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise UnsupportedResourceType(
            resource_type=resource_type, supported=", ".join(SUPPORTED_TYPES)
        )


def _check_source(deps: Deps, source: str) -> str:
    """The resolved source when the host-path rule allows it and it is a directory."""
    path = host_paths.check(source, deps.path_policy, os.path.realpath)
    if not os.path.isdir(path):
        raise InvalidInput(detail=f"Source {source!r} is not an existing directory")
    return path


def register(
    deps: Deps,
    caller: Caller,
    *,
    resource_type: str,
    name: str,
    source: str,
    tags: Mapping[str, str] | None = None,
    worker_label: str | None = None,
) -> Record:
    """RegisterResource: add a directory to the inventory (AlreadyExists for a known name)."""
    _check_type(resource_type)
    if not _NAME_RE.match(name):
        raise InvalidInput(
            detail=f"Name must be 1-128 letters, digits, '.', '_' or '-', got {name!r}"
        )
    path = _check_source(deps, source)
    arn = resource_arn(caller.region, caller.account_id, resource_type, name)
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.resources.register(
            conn,
            arn=arn,
            account_id=caller.account_id,
            region=caller.region,
            resource_type=resource_type,
            created_at=caller.now,
            name=name,
            source=path,
            worker_label=worker_label,
        )
        catalog.tags.tag(conn, arn, dict(tags or {}))
        return _with_tags(conn, row)


def _with_tags(conn: Any, row: Record) -> Record:
    return dict(row, tags=catalog.tags.list_for(conn, row["arn"]))


def get(deps: Deps, caller: Caller, arn: str) -> Record:
    """The resource with its tags; NotFound unless it belongs to the caller's account."""
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.resources.find(conn, arn)
        if row is None or row["account_id"] != caller.account_id:
            raise NotFound(kind="resource", name=arn)
        return _with_tags(conn, row)


def list_resources(
    deps: Deps,
    caller: Caller,
    *,
    resource_type: str | None = None,
    protected_only: bool = False,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        page = catalog.resources.list_resources(
            conn,
            account_id=caller.account_id,
            region=caller.region,
            protected_only=protected_only,
            resource_type=resource_type,
            limit=limit,
            token=token,
        )
        items = [_with_tags(conn, r) for r in page.items]
    return catalog.pagination.Page(items, page.next_token)


def list_by_vault(
    deps: Deps, caller: Caller, vault: Record, *, limit: int | None, token: str | None
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.resources.list_by_vault(
            conn, vault_arn=vault["arn"], limit=limit, token=token
        )


def deregister(deps: Deps, caller: Caller, arn: str) -> None:
    """DeregisterResource: its recovery points stay."""
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.resources.delete(conn, arn)


def tag(deps: Deps, caller: Caller, arn: str, tags: Mapping[str, str]) -> None:
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        tagging.add(conn, arn, tags)  # at most 50 tags, the existing ones included


def untag(deps: Deps, caller: Caller, arn: str, keys: Iterable[str]) -> None:
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.tags.untag(conn, arn, list(keys))
