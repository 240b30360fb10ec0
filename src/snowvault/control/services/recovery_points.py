"""Recovery points: list, describe, lifecycle, restore metadata, browse, delete, prune.

DeleteRecoveryPoint forgets the point in the engine at once (its manifest goes) and
marks the vault for a background prune (:func:`prune_pending`, run by a sweeper) that
frees the data no other point needs; :func:`forget_point` is that one way a point goes,
shared with the lifecycle expiry (services/expiry.py). After a lock is removed, a caller
allowed to remove locks bypasses the GOVERNANCE retention it left in the store
(vault_lock.check_delete), in the forget and in the prune it asks for; a store that
still retains the point refuses plainly.

:func:`unique_bytes` is DescribeRecoveryPoint's ``SnowvaultUniqueBytes``: the stored
bytes that delete + prune would free, from one pass over the vault's trees, cached per
vault until its manifests or index change.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.catalog import continuous as catalog_continuous
from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs, lifecycle
from snowvault.control.services import composite, continuous, plugin_io, vault_lock, vaults
from snowvault.control.services import errors as service_errors
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import Conflict, NotFound, SnowvaultError
from snowvault.engine import browse, errors, locks, prune, usage
from snowvault.engine.repository import MANIFEST_PREFIX

log = logging.getLogger("snowvault.sweepers")


def _get(
    deps: Deps, caller: Caller, vault_name: str, arn: str
) -> tuple[Record, jobs.RecoveryPoint]:
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.read_transaction(deps.engine) as conn:
        return vault, catalog.recovery_points.get(conn, arn, vault_arn=vault["arn"])


def get(deps: Deps, caller: Caller, vault_name: str, arn: str) -> jobs.RecoveryPoint:
    """DescribeRecoveryPoint's record (its view computes the storage class as of now)."""
    _vault, rp = _get(deps, caller, vault_name, arn)
    return rp


def get_any(deps: Deps, caller: Caller, arn: str) -> jobs.RecoveryPoint:
    """A recovery point of the caller's account, whatever its vault."""
    with catalog.db.read_transaction(deps.engine) as conn:
        rp = catalog.recovery_points.find(conn, arn)
    if rp is None or rp.account_id != caller.account_id:
        raise NotFound(kind="recovery point", name=arn)
    return rp


UNIQUE_MAX_MANIFESTS = 5000
"""A vault with more recovery points than this gets no ``SnowvaultUniqueBytes`` (the
pass reads every tree of the vault; ``snowvault cost report`` still has the number)."""
UNIQUE_CACHE_VAULTS = 32
"""How many vaults' answers are kept (least recently asked go first)."""

_unique_cache: OrderedDict[str, tuple[tuple[Any, ...], dict[str, int]]] = OrderedDict()
_unique_lock = threading.Lock()


def unique_bytes(deps: Deps, rp: jobs.RecoveryPoint) -> int | None:
    """The stored bytes (compressed, encrypted) only ``rp`` holds in its vault: what
    DeleteRecoveryPoint and the prune after it free. A continuous point counts its whole
    chain, a composite point its nested points. None for a nested point (it is deleted
    with its composite point, whose number counts it), one being deleted, a vault over
    :data:`UNIQUE_MAX_MANIFESTS`, or a repository changing under the pass (a prune).

    One pass over every tree of the vault (``engine.usage.unique_bytes``) answers for all
    its points at once; it is cached per vault, keyed by the names of its manifests and
    index segments (both change with every backup, delete and prune), so describing
    every point of an unchanged vault walks it once. Lock-free: a read-only call writes
    nothing into the vault's store."""
    if rp.parent_recovery_point_arn or rp.status == "DELETING":
        return None
    with catalog.db.read_transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
        units = _deletion_units(conn, vault["arn"])
    if rp.arn not in units.values():
        return None  # no data of its own in the vault (an empty composite point)
    backend = vaults.store(deps, vault)
    try:
        manifests = sorted(o.name for o in backend.list(MANIFEST_PREFIX))
        segments = sorted(o.name for o in backend.list("index/"))
    finally:
        backend.close()
    if len(manifests) > UNIQUE_MAX_MANIFESTS:
        return None
    key = (vault["storage_url"], tuple(manifests), tuple(segments), tuple(sorted(units.items())))
    with _unique_lock:
        hit = _unique_cache.get(vault["arn"])
        if hit is not None and hit[0] == key:
            _unique_cache.move_to_end(vault["arn"])
            return hit[1].get(rp.arn)
    try:
        with vaults.open_repository(deps, vault) as repo:
            found = usage.unique_bytes(repo, units)
    except SnowvaultError as exc:  # e.g. a pack a running prune just removed
        log.info("unique bytes of vault %s not computed: %s", vault["arn"], exc)
        return None
    with _unique_lock:
        _unique_cache[vault["arn"]] = (key, found)
        _unique_cache.move_to_end(vault["arn"])
        while len(_unique_cache) > UNIQUE_CACHE_VAULTS:
            _unique_cache.popitem(last=False)
    return found.get(rp.arn)


def _deletion_units(conn: Connection, vault_arn: str) -> dict[str, str]:
    """Engine recovery point id -> the ARN of the point whose deletion removes it: its
    own point, its composite point for a nested one, a continuous point for each piece
    of its chain."""
    units: dict[str, str] = {}
    token = None
    while True:
        page = catalog.recovery_points.list_by_vault(conn, vault_arn=vault_arn, token=token)
        for point in page.items:
            if point.engine_recovery_point_id:
                owner = point.parent_recovery_point_arn or point.arn
                units[point.engine_recovery_point_id] = owner
        token = page.next_token
        if token is None:
            break
    for chain in catalog_continuous.list_points(conn):
        if chain.backup_vault_arn == vault_arn:
            for engine_id in catalog_continuous.engine_ids(conn, chain.recovery_point_arn):
                units[engine_id] = chain.recovery_point_arn
    return units


def list_by_vault(
    deps: Deps,
    caller: Caller,
    vault_name: str,
    filters: catalog.recovery_points.RecoveryPointFilters,
    *,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.RecordPage[jobs.RecoveryPoint]:
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.recovery_points.list_by_vault(
            conn, vault_arn=vault["arn"], filters=filters, limit=limit, token=token
        )


def list_by_resource(
    deps: Deps, caller: Caller, resource_arn: str, *, limit: int | None, token: str | None
) -> catalog.pagination.RecordPage[jobs.RecoveryPoint]:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.recovery_points.list_by_resource(
            conn, resource_arn=resource_arn, account_id=caller.account_id, limit=limit, token=token
        )


def update_lifecycle(
    deps: Deps, caller: Caller, vault_name: str, arn: str, data: Mapping[str, Any] | None
) -> jobs.RecoveryPoint:
    """UpdateRecoveryPointLifecycle: new lifecycle and calculated dates, by the model's rules."""
    vault, rp = _get(deps, caller, vault_name, arn)
    new = lifecycle.lifecycle_from_api(data)
    calc = lifecycle.calculated_lifecycle(new, rp.creation_date)
    lifecycle.validate_lifecycle_update(rp.calculated_lifecycle, calc, caller.now)
    vault_lock.check_lifecycle(deps, caller, vault, rp, calc.delete_at)
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.recovery_points.update_lifecycle(
            conn,
            arn,
            lifecycle=None if new is None else dict(data or {}),
            move_to_cold_at=calc.move_to_cold_storage_at,
            delete_at=calc.delete_at,
        )


def restore_metadata(deps: Deps, caller: Caller, vault_name: str, arn: str) -> dict[str, str]:
    """GetRecoveryPointRestoreMetadata: what StartRestoreJob needs to put it back (the
    point's resource type's plugin says)."""
    _vault, rp = _get(deps, caller, vault_name, arn)
    with catalog.db.transaction(deps.engine) as conn:
        resource = catalog.resources.find(conn, rp.resource_arn)
    if resource is not None and resource["account_id"] != rp.account_id:
        resource = None  # a copy in another account: the source resource is not its to show
    if rp.is_parent:  # a composite point: each member's defaults, prefixed by member
        return composite.restore_defaults(deps, rp)
    plugin = deps.plugins.get(rp.resource_type)
    defaults = plugin.restore_defaults(
        None if resource is None else plugin_io.resource_of(resource)
    )
    return {**defaults, **continuous.restore_defaults(deps, rp.arn)}


def contents(
    deps: Deps, caller: Caller, arn: str, path: str = "/", recursive: bool = False
) -> list[browse.Entry]:
    """Every entry under ``path`` (unbounded: :func:`contents_page` serves the API)."""
    rp = get_any(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
    with vaults.open_repository(deps, vault) as repo:
        return browse.ls(repo, rp.engine_recovery_point_id or "", path or "/", recursive)


_CONTENTS_TOKEN = "rp-contents"


def contents_page(
    deps: Deps,
    caller: Caller,
    arn: str,
    path: str = "/",
    recursive: bool = False,
    *,
    limit: int | None = None,
    token: str | None = None,
) -> tuple[list[browse.Entry], str | None]:
    """ListRecoveryPointContents (extension API): at most ``limit`` entries under
    ``path`` (1-1000, default 1000) after ``token``, and the next page's token (None at
    the end).

    Abuse case: a recursive listing of a point of a million files answered them all in
    one body (100,100 entries: 11.9 MB and 129 MB more server memory, 11.8 s), for any
    caller allowed to list. A page is bounded; the walk reads trees only as far as the
    page reaches. The token names the listing (point, path, recursive) and the last
    entry's raw path; one of another listing or a position not in it is InvalidToken
    (400) or InvalidInput, and it reaches only the point the caller may already list.

        entries, nxt = recovery_points.contents_page(deps, caller, arn, "/", True, limit=2)
    """
    size = catalog.pagination.check_limit(limit)
    where = path or "/"
    after = _contents_after(token, [arn, where, recursive]) if token else None
    rp = get_any(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
    with vaults.open_repository(deps, vault) as repo:
        walk = browse.walk(repo, rp.engine_recovery_point_id or "", where, recursive, after)
        entries = list(itertools.islice(walk, size + 1))
    if len(entries) <= size:
        return entries, None
    last = base64.b64encode(entries[size - 1].raw_path).decode()
    return entries[:size], catalog.pagination.encode_token(
        _CONTENTS_TOKEN, [arn, where, recursive, last]
    )


def _contents_after(token: str, listing: list[Any]) -> bytes:
    values = catalog.pagination.decode_token(_CONTENTS_TOKEN, token)
    if values[:3] != listing or len(values) != 4 or not isinstance(values[3], str):
        raise catalog.pagination.InvalidToken(detail="the token belongs to another listing")
    try:
        return base64.b64decode(values[3].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise catalog.pagination.InvalidToken(detail="bad position") from exc


def delete(deps: Deps, caller: Caller, vault_name: str, arn: str) -> None:
    """DeleteRecoveryPoint: forget in the engine, drop the row, prune in the background."""
    vault, rp = _get(deps, caller, vault_name, arn)
    if rp.status == "DELETING":
        raise Conflict(detail=f"recovery point {arn} is already being deleted")
    # a composite point goes with its nested ones, each guarded; a nested one not alone
    doomed = composite.check_delete(
        deps, rp, lambda point: vault_lock.check_delete(deps, caller, vault, point)
    )
    for point, bypass in doomed:
        _delete_one(deps, vault, point, caller.now, bypass)


def _delete_one(
    deps: Deps, vault: Record, rp: jobs.RecoveryPoint, now: datetime, bypass: bool
) -> None:
    continuous.stop_future(deps, rp.arn)  # AWS: deleting a continuous point stops it
    with catalog.db.transaction(deps.engine) as conn:
        catalog.recovery_points.set_status(conn, rp.arn, "DELETING")
    try:
        forget_point(deps, vault, rp, now, bypass_governance=bypass)
    except errors.ObjectLocked as exc:
        with catalog.db.transaction(deps.engine) as conn:
            catalog.recovery_points.set_status(conn, rp.arn, rp.status)
        raise service_errors.VaultLocked(
            detail=f"the recovery point is still retained by the vault's storage ({exc})"
        ) from exc


def forget_point(
    deps: Deps,
    vault: Record,
    rp: jobs.RecoveryPoint,
    now: datetime,
    *,
    bypass_governance: bool = False,
    then: Callable[[Connection], None] | None = None,
) -> None:
    """The one way a recovery point goes (DeleteRecoveryPoint, lifecycle expiry): its
    manifest is forgotten in the vault's repository, then in one catalog transaction its
    row is dropped, the vault is marked for a prune (:func:`prune_pending`, which may
    bypass GOVERNANCE retention if the forget did) and ``then`` runs in the same
    transaction. What the engine raises (errors.ObjectLocked: the store still retains
    the point) leaves the catalog as it was; the caller restores the point's status."""
    with catalog.db.read_transaction(deps.engine) as conn:
        chain = list(catalog_continuous.engine_ids(conn, rp.arn))  # a continuous point's
    with vaults.open_repository(deps, vault) as repo:
        listed = set(repo.list_manifests())
        ids_ = [i for i in dict.fromkeys([rp.engine_recovery_point_id, *chain]) if i in listed]
        if ids_:
            prune.forget(repo, ids_, bypass_governance=bypass_governance)
    with catalog.db.transaction(deps.engine) as conn:
        catalog_continuous.delete(conn, rp.arn)
        catalog.recovery_points.delete(conn, rp.arn)
        if rp.is_parent:  # nested points a hold kept stand alone from now on
            catalog.composite.detach(conn, rp.arn)
        catalog.maintenance.mark_prune_pending(
            conn, vault["arn"], now, bypass_governance=bypass_governance
        )
        if then is not None:
            then(conn)


def prune_pending(deps: Deps) -> list[str]:
    """Prune every vault marked after a delete; returns the vault ARNs pruned.

    A vault into which a backup job runs (the catalog says so: the repository lock alone
    is not trusted with a long backup's unreferenced packs, as a lock whose refresh
    failed ages out), or whose repository is locked, stays marked for later.
    After a governance-bypass delete the prune bypasses GOVERNANCE retention (only the
    packs no remaining point references are ever deleted).
    """
    with catalog.db.transaction(deps.engine) as conn:
        pending = catalog.maintenance.due_prunes(conn)
    done = []
    for mark in pending:
        with catalog.db.transaction(deps.engine) as conn:
            vault = catalog.vaults.find_by_arn(conn, mark.vault_arn)
            if vault is None:
                catalog.maintenance.clear_prune(conn, mark)
                continue
            if catalog.jobs.writing_into(conn, mark.vault_arn):
                continue
        try:
            with vaults.open_repository(deps, vault) as repo:
                prune.prune(repo, deps.clock, bypass_governance=mark.bypass_governance)
        except locks.RepositoryLocked:
            continue
        with catalog.db.transaction(deps.engine) as conn:
            catalog.maintenance.clear_prune(conn, mark)  # unless marked again meanwhile
        done.append(mark.vault_arn)
    return done
