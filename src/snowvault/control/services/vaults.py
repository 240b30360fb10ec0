"""Backup vaults: create (one engine repository each), describe, list, delete, open.

A vault lives at ``<region location>/<account>/<name>-<random suffix>``; its repository
secret sits in an external key slot wrapped by the vault's key (see vault_keys).
CreateBackupVault is idempotent on CreatorRequestId: the same name and request id give
back the vault created the first time, and a create that fails after the repository
was written (a key that will not wrap, a storage error, losing a same-name race at the
catalog insert) removes what it wrote, directories included: it leaves nothing behind.

DeleteBackupVault is refused (InvalidRequestException) while the vault holds recovery
points or while a job uses it: a backup job waiting or running into it, a restore job
from it. The check and the row delete are one catalog transaction holding the vault row
(``catalog.vaults.lock``), and queueing a job takes the same row shared, so no job can
slip in between; the storage is destroyed only after that commit.

No orphans: a backup that fails, is stopped or loses its worker marks its vault
(``catalog.maintenance.mark_orphans``, with when the prune is due). Once
:data:`ORPHAN_GRACE` has passed and no backup job runs into the vault, the orphan-prune
sweep (:func:`prune_orphans`) prunes it, which deletes the packs and index segments no
recovery point references, and removes the temporary files a killed write left (local
storage) older than the grace period.

AWS's ``Default`` vault: every account and region has one, made on first use as the
AWS console makes it (:func:`ensure_default`): the first ListBackupVaults, a
DescribeBackupVault naming it, a CreateBackupPlan whose rule targets it, or a
StartBackupJob into it. It is an ordinary vault under the default vault key; deleting
it (when empty) is allowed, and the next use makes it again.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.services import errors as service_errors
from snowvault.control.services.base import Caller, Deps
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.clock import Clock
from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, SnowvaultError
from snowvault.engine import index_cache, locks, prune
from snowvault.engine.backends import base as backends
from snowvault.engine.backends import local, tiered
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import Repository

log = logging.getLogger("snowvault.vaults")


DEFAULT_VAULT = "Default"
"""The vault AWS keeps in every account and region (the shipped plan templates target it)."""

ORPHAN_GRACE = timedelta(hours=1)
"""How long after a failed backup its vault is left alone before the orphan prune.

Longer than any lease (a worker that lost its lease notices within one heartbeat and
stops), so nothing a live writer still needs is collected.
"""


def vault_arn(region: str, account_id: str, name: str) -> str:
    return arns.build("backup", region, account_id, f"backup-vault:{name}")


def _storage_url(deps: Deps, caller: Caller, name: str) -> str:
    """The new vault's place under its region's location; the path goes before an S3
    location's ``?options`` (appended after them, every vault shared one prefix)."""
    location = deps.storage.location(caller.region)
    tail = f"{caller.account_id}/{name}-{ids.new_hex(4)}"
    if "://" not in location:
        return f"{location.rstrip('/')}/{tail}"
    parts = urlsplit(location)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{tail}"))


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
        raise AlreadyExists(
            kind="backup vault",
            name=name,
            arn=existing["arn"],
            creator_request_id=existing["creator_request_id"],
        )
    url = _storage_url(deps, caller, name)
    with _backup_codes(encryption_key_arn):
        key_arn, key_type = deps.vault_keys.choose(
            region=caller.region, account_id=caller.account_id, requested=encryption_key_arn
        )
    backend = open_backend(url)
    try:
        with _backup_codes(encryption_key_arn):
            repo = Repository.init(backend, wrapper=deps.vault_keys.wrapper(key_arn))
        repo.close()
        return _insert(deps, caller, name, url, (key_arn, key_type), repo, tags, creator_request_id)
    except BaseException:
        _destroy(backend, deps.clock)
        raise
    finally:
        backend.close()


# The key service's refusals of a vault's key, as the backup model words them: the
# backup API has no NotFoundException, DisabledException or KMSInvalidStateException;
# AWS Backup answers a key it cannot use with InvalidParameterValueException. An
# authorization refusal stays AccessDeniedException; the KMS API keeps its own codes.
_KEY_REFUSALS: tuple[type[SnowvaultError], ...] = (
    InvalidInput,
    NotFound,
    service_errors.KeyDisabled,
    service_errors.KeyInvalidState,
    service_errors.UnsupportedKmsOperation,
)


@contextmanager
def _backup_codes(requested: str | None) -> Iterator[None]:
    try:
        yield
    except _KEY_REFUSALS as exc:
        shown = requested or "the default vault key"
        raise InvalidInput(
            f"EncryptionKeyArn: {shown} cannot be used as this vault's key: {exc}",
            field="EncryptionKeyArn",
            detail=f"{shown} cannot be used as this vault's key: {exc}",
        ) from exc


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


def ensure_default(deps: Deps, caller: Caller) -> None:
    """Make the caller's ``Default`` vault unless it exists (first use, as on AWS); a
    region this server does not store is left alone (its requests fail elsewhere)."""
    if caller.region not in deps.storage.regions or _find(deps, caller, DEFAULT_VAULT):
        return
    with contextlib.suppress(AlreadyExists):  # a concurrent first use made it
        create(deps, caller, DEFAULT_VAULT)


def get(deps: Deps, caller: Caller, name: str) -> Record:
    """DescribeBackupVault's row; raises NotFound (``Default`` is made on first use)."""
    if name == DEFAULT_VAULT:
        ensure_default(deps, caller)
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
    """ListBackupVaults; the first listing makes the ``Default`` vault, as on AWS."""
    if token is None and vault_type in (None, "BACKUP_VAULT"):
        ensure_default(deps, caller)
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
    """DeleteBackupVault: only an empty vault that no job uses (InvalidRequestException
    otherwise); then its storage, directories included."""
    vault = get(deps, caller, name)
    arn = vault["arn"]
    with catalog.db.transaction(deps.engine) as conn:
        locked = catalog.vaults.lock(conn, arn)  # a job insert now waits, then fails
        if locked["number_of_recovery_points"]:
            raise Conflict(detail=catalog.vaults.NOT_EMPTY)
        uses = catalog.jobs.using_vault(conn, arn) + catalog.copy_jobs.using_vault(conn, arn)
        if uses:
            raise Conflict(
                detail=f"Backup vault {name} cannot be deleted while {uses[0].kind} job "
                f"{uses[0].job_id} is {uses[0].state}"
            )
        catalog.vaults.delete(conn, arn)
        catalog.maintenance.forget_vault(conn, arn)
    destroy_storage(deps, vault)


DESTROY_WAIT_SECONDS = 120.0
"""How long deleting a vault's storage waits for a running prune, integrity check or
copy to let go of the repository before it deletes under them anyway."""


def _destroy(backend: backends.Backend, clock: Clock) -> None:
    """Delete every object of a repository (an empty vault, or one never registered),
    then, on local storage, its directories and any temporary file a killed write left.

    The delete holds the repository's exclusive lock, so it waits for a sweep that is
    writing into the store (a prune of the point deleted just before, an integrity
    check), and removes ``config`` first: a sweep that opened the repository before the
    delete and locks it after finds it gone and writes nothing (``locked_repository``).
    No key is needed, so a vault whose KMS key is gone is deleted all the same."""
    with contextlib.ExitStack() as stack:
        lock: locks.Lock | None = None
        try:
            lock = stack.enter_context(
                locks.locked(backend, clock, exclusive=True, wait_seconds=DESTROY_WAIT_SECONDS)
            )
        except SnowvaultError as exc:  # still held after the wait: delete under the holder
            log.warning("vault storage %s: deleted while locked (%s)", backend.location, exc)
        with contextlib.suppress(SnowvaultError):
            backend.delete("config")
        for info in list(backend.list()):
            if lock is None or info.name != lock.name:
                with contextlib.suppress(SnowvaultError):
                    backend.delete(info.name)
    tiers = [backend.warm, backend.cold] if isinstance(backend, tiered.TieredBackend) else [backend]
    for part in tiers:
        if not isinstance(part, local.LocalBackend):
            continue
        for _ in range(3):  # a sweep's lock written meanwhile leaves a directory behind
            if local.remove_empty_tree(part.root):
                break
            time.sleep(0.2)
        else:
            left = sorted(
                os.path.relpath(os.path.join(d, f), part.root)
                for d, _dirs, files in os.walk(part.root)
                for f in files
            )
            log.warning(
                "vault storage %s: %d object(s) were left after the delete: %s",
                part.root,
                len(left),
                ", ".join(left[:10]),
            )


def mark_orphans(conn: Any, vault_arn: str, now: datetime) -> None:
    """Ask for an orphan prune of the vault ``ORPHAN_GRACE`` after ``now`` (a backup into
    it failed, was stopped or lost its worker; a later failure moves the date on)."""
    catalog.maintenance.mark_orphans(conn, vault_arn, now + ORPHAN_GRACE)


def prune_orphans(deps: Deps, now: datetime) -> list[str]:
    """The sweep: prune each vault whose orphan mark is due and into which no backup job
    runs; returns the vault ARNs pruned. A vault whose repository is locked, or whose
    prune fails, keeps its mark and is tried again at a later sweep."""
    with catalog.db.read_transaction(deps.engine) as conn:
        marks = catalog.maintenance.orphan_prunes(conn)
    done = []
    for mark in marks:
        arn = mark.vault_arn
        with catalog.db.read_transaction(deps.engine) as conn:
            vault = catalog.vaults.find_by_arn(conn, arn)
            writers = catalog.jobs.writing_into(conn, arn) if vault is not None else []
        if vault is not None and (mark.due_at > now or writers):
            continue  # not due, or running backups' packs are not referenced yet
        if vault is not None:
            try:
                _collect_orphans(deps, vault, now - ORPHAN_GRACE)
            except locks.RepositoryLocked:
                continue
            except SnowvaultError:
                log.exception("orphan prune of vault %s failed; retried later", arn)
                continue
            done.append(arn)
        with catalog.db.transaction(deps.engine) as conn:
            catalog.maintenance.clear_orphans(conn, mark)  # unless marked again meanwhile
    return done


def _collect_orphans(deps: Deps, vault: Record, stale_before: datetime) -> None:
    with open_repository(deps, vault) as repo:
        for rp_id in _stray_manifests(deps, repo):
            with contextlib.suppress(SnowvaultError):  # e.g. under store retention: stays
                prune.forget(repo, [rp_id])
        report = prune.prune(repo, deps.clock)
        temps = []
        if isinstance(repo.backend, local.LocalBackend):
            temps = local.remove_stale_temp(repo.backend.root, before=stale_before.timestamp())
    log.info(
        "vault %s: orphan prune deleted %d pack(s) and %d temporary file(s)",
        vault["arn"],
        report.packs_deleted,
        len(temps),
    )


STORE_CACHE = index_cache.StoreCache()
"""This process's memory of its vaults' never-rewritten objects (config, key slots,
index segments, pack-key records): ``open_repository(..., cached=True)``."""
_SHARED_STORES: OrderedDict[tuple[str, str | None], backends.Backend] = OrderedDict()
_SHARED_STORES_KEPT = 32
_SHARED_LOCK = threading.Lock()


@contextmanager
def open_repository(
    deps: Deps, vault: Record, *, cached: bool = False, load_index: bool = True
) -> Iterator[Repository]:
    """The vault's engine repository, opened with the vault's key; closed afterwards.
    With a cold location for its region, its store is warm + cold (``tiered``).

    ``cached`` (the agents' job calls, which open a vault per call): the store client
    is this process's shared one for the vault, and what the open reads is served from
    :data:`STORE_CACHE` where its name was read before (engine/index_cache.py: every
    open still lists the store). ``load_index=False``: the caller's lock loads the index
    (``locks.locked_repository`` reloads it anyway)."""
    backend = _shared_store(deps, vault) if cached else store(deps, vault)
    try:
        wrapper = deps.vault_keys.wrapper(vault["encryption_key_arn"])
        repo = Repository.open(
            backend,
            wrapper=wrapper,
            cache=STORE_CACHE if cached else None,
            load_index=load_index,
        )
        try:
            yield repo
        finally:
            repo.close()
    finally:
        if not cached:
            backend.close()


def _shared_store(deps: Deps, vault: Record) -> backends.Backend:
    """One store object per vault location for this process's cached opens (an S3
    client costs ~10 ms of CPU to make; clients are thread-safe), the least recently
    used dropped past :data:`_SHARED_STORES_KEPT` (left to the collector: another
    thread may still use it)."""
    key = (str(vault["storage_url"]), deps.storage.cold_url(vault["region"], vault["storage_url"]))
    with _SHARED_LOCK:
        found = _SHARED_STORES.get(key)
        if found is not None:
            _SHARED_STORES.move_to_end(key)
            return found
    made = store(deps, vault)
    with _SHARED_LOCK:
        found = _SHARED_STORES.setdefault(key, made)
        _SHARED_STORES.move_to_end(key)
        while len(_SHARED_STORES) > _SHARED_STORES_KEPT:
            _SHARED_STORES.popitem(last=False)
    if found is not made:
        made.close()
    return found


def forget_shared(vault: Record) -> None:
    """Drop what this process keeps of a vault whose storage is destroyed."""
    with _SHARED_LOCK:
        for key in [k for k in _SHARED_STORES if k[0] == vault["storage_url"]]:
            STORE_CACHE.forget(_SHARED_STORES.pop(key).location)


def store(deps: Deps, vault: Record) -> backends.Backend:
    """The vault's object store: its storage URL, tiered over its cold store if any."""
    warm = open_backend(vault["storage_url"])
    cold = deps.storage.cold_url(vault["region"], vault["storage_url"])
    return warm if cold is None else tiered.TieredBackend(warm, open_backend(cold))


def destroy_storage(deps: Deps, vault: Record) -> None:
    """Remove a vault's repository objects, cold ones included (delete, test-mode reset)."""
    forget_shared(vault)
    backend = store(deps, vault)
    try:
        _destroy(backend, deps.clock)
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


def _stray_manifests(deps: Deps, repo: Repository) -> list[str]:
    """Engine recovery points a backup job committed but the catalog never recorded: the
    job was stopped, or lost its lease, after the manifest landed and before the
    recovery point row (a stop request read at the last progress report does that). Only
    manifests of jobs that have ENDED without this manifest as their point qualify; a
    manifest with no job in the catalog (an imported vault) is never touched. A copied
    manifest is judged by its copy job (``copy_job_id``), never by the source's
    ``backup_job_id`` it carries over: that job's point is the source's."""
    stray = []
    pairs = repo.manifests()
    with catalog.db.read_transaction(deps.engine) as conn:
        for rp_id, manifest in pairs:
            meta = manifest.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            copy_id, job_id = meta.get("copy_job_id"), meta.get("backup_job_id")
            try:
                if isinstance(copy_id, str):
                    copy = catalog.copy_jobs.get(conn, copy_id)
                    final = copy.state in catalog.copy_jobs.MACHINE.final
                    point_arn = copy.destination_recovery_point_arn
                elif isinstance(job_id, str):
                    job = catalog.jobs.get(conn, job_id)
                    final, point_arn = job.state in catalog.jobs.FINAL, job.recovery_point_arn
                else:
                    continue
            except SnowvaultError:
                continue
            if not final:
                continue
            rp = catalog.recovery_points.find(conn, point_arn)
            if rp is None or rp.engine_recovery_point_id != rp_id:
                stray.append(rp_id)
    return stray
