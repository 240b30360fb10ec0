"""Restore jobs: StartRestoreJob and friends, and running one restore on a worker.

Metadata (strings, as AWS passes them):

- ``targetPath`` (required): absolute path of a new or empty directory, unless
  ``overwrite`` is ``"true"``;
- ``items`` (optional): the paths to restore, a JSON list or comma-separated;
- ``overwrite`` (optional): ``"true"`` to restore over existing files.

A job ends COMPLETED, or FAILED with a StatusMessage naming what went wrong.

Abuse case: a caller with ``StartRestoreJob`` names a directory the server will write
with its own (often root) rights. The target is resolved (symlinks in it or any parent,
``..``) and must pass the operator's host-path rule (``Deps.path_policy``, see
:mod:`snowvault.control.model.host_paths`: never /etc unless allowed, never the data
directory or a vault's storage, never a directory *containing* them) at the call, before
any job exists, and again in the worker right before it writes; the worker writes into
the path it resolved then, and refuses when it resolves differently once created (a
symlink swapped in between).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.services import vaults
from snowvault.control.services.base import Caller, Deps, JobControl
from snowvault.control.services.errors import InvalidRestoreTarget, JobStopped
from snowvault.core import ids
from snowvault.core.errors import Conflict, NotFound, SnowvaultError
from snowvault.engine import locks, restorer
from snowvault.engine.progress import Progress

log = logging.getLogger("snowvault.jobs")

Record = dict[str, Any]
OPERATION = "StartRestoreJob"


def parse_items(raw: str | None) -> list[str]:
    """``items`` metadata: a JSON list of paths or a comma-separated string.

    >>> parse_items('["/a", "/b c"]'), parse_items("/a, /b"), parse_items(None)
    (['/a', '/b c'], ['/a', '/b'], [])
    """
    if not raw or not raw.strip():
        return []
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidRestoreTarget(
                "Metadata.items: not a valid JSON list", path=raw, detail=str(exc)
            ) from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRestoreTarget("Metadata.items: must be a list of strings")
        return [v for v in value if v]
    return [part.strip() for part in text.split(",") if part.strip()]


def check_target(metadata: Mapping[str, str], policy: host_paths.Policy) -> tuple[str, bool]:
    """The resolved target path and the overwrite flag; raises InvalidRestoreTarget, or
    PathRefused when ``policy`` (the host-path rule) refuses the resolved target."""
    path = metadata.get("targetPath") or metadata.get("TargetPath")
    if not path:
        raise InvalidRestoreTarget("Metadata.targetPath is required (an absolute directory)")
    overwrite = str(metadata.get("overwrite", "false")).lower() == "true"
    if not isinstance(path, str) or not os.path.isabs(path):
        raise InvalidRestoreTarget(path=path, detail="must be an absolute path")
    if "\x00" in path:
        raise InvalidRestoreTarget(path=path, detail="contains a NUL byte")
    resolved = host_paths.check(path, policy, os.path.realpath)
    if os.path.lexists(resolved):
        if not os.path.isdir(resolved):
            raise InvalidRestoreTarget(path=path, detail="exists and is not a directory")
        if not overwrite and os.listdir(resolved):
            raise InvalidRestoreTarget(
                path=path,
                detail='is not empty; set Metadata.overwrite to "true" to restore over it',
            )
    return resolved, overwrite


def start(
    deps: Deps,
    caller: Caller,
    *,
    recovery_point_arn: str,
    metadata: Mapping[str, str],
    iam_role_arn: str | None = None,
    idempotency_token: str | None = None,
    resource_type: str | None = None,
) -> Record:
    """StartRestoreJob: validate the target now (fail fast, no job), then queue the job."""
    check_target(metadata, deps.path_policy)
    parse_items(metadata.get("items"))
    with catalog.db.transaction(deps.engine) as conn:
        if idempotency_token:
            seen = catalog.idempotency.lookup(
                conn, account_id=caller.account_id, operation=OPERATION, token=idempotency_token
            )
            if seen is not None:
                return catalog.restore_jobs.get(conn, seen["RestoreJobId"])
        rp = catalog.recovery_points.find(conn, recovery_point_arn)
        if rp is None or rp["account_id"] != caller.account_id:
            raise NotFound(kind="recovery point", name=recovery_point_arn)
        if rp["status"] not in ("COMPLETED", "PARTIAL"):
            raise Conflict(detail=f"recovery point {recovery_point_arn} is {rp['status']}")
        job = catalog.restore_jobs.create(
            conn,
            restore_job_id=ids.new_uuid(),
            account_id=caller.account_id,
            region=caller.region,
            recovery_point_arn=rp["arn"],
            backup_vault_arn=rp["backup_vault_arn"],
            source_resource_arn=rp["resource_arn"],
            resource_type=resource_type or rp["resource_type"],
            metadata=dict(metadata),
            iam_role_arn=iam_role_arn,
            idempotency_token=idempotency_token,
            creation_date=caller.now,
            recovery_point_creation_date=rp["creation_date"],
            backup_size_in_bytes=rp["backup_size_in_bytes"],
            percent_done=0.0,
        )
        if idempotency_token:
            catalog.idempotency.remember(
                conn,
                account_id=caller.account_id,
                operation=OPERATION,
                token=idempotency_token,
                result={"RestoreJobId": job["restore_job_id"]},
                now=caller.now,
            )
        return job


def get(deps: Deps, caller: Caller, job_id: str) -> Record:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.get(conn, job_id, account_id=caller.account_id)


def list_jobs(
    deps: Deps,
    caller: Caller,
    filters: catalog.restore_jobs.RestoreJobFilters,
    *,
    account_id: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    if account_id not in (None, caller.account_id):
        return catalog.pagination.Page([], None)
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.list_jobs(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            filters=filters,
            limit=limit,
            token=token,
        )


def list_by_resource(
    deps: Deps,
    caller: Caller,
    resource_arn: str,
    filters: catalog.restore_jobs.RestoreJobFilters,
    *,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.list_by_protected_resource(
            conn,
            account_id=caller.account_id,
            resource_arn=resource_arn,
            filters=filters,
            limit=limit,
            token=token,
        )


# --- the worker side -----------------------------------------------------------------


def claim(deps: Deps, worker_id: str, labels: Sequence[str], lease_seconds: float) -> Record | None:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.claim_next_restore_job(
            conn, worker_id, labels, lease_seconds, deps.clock.now()
        )


def heartbeat(
    deps: Deps, job_id: str, worker_id: str, lease_seconds: float, progress: Mapping[str, Any]
) -> str | None:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.heartbeat(
            conn, job_id, worker_id, deps.clock.now(), lease_seconds, **progress
        )


def run(deps: Deps, job: Record, worker_id: str, control: JobControl) -> str:
    """Run a claimed restore job to its end; returns the final status."""
    try:
        result = _restore(deps, job, control)
    except JobStopped as exc:
        return _end(deps, job, worker_id, "ABORTED", status_message=str(exc))
    except (SnowvaultError, OSError) as exc:
        return _end(deps, job, worker_id, "FAILED", status_message=str(exc))
    except Exception as exc:
        log.exception("restore job %s failed", job["restore_job_id"])
        return _end(deps, job, worker_id, "FAILED", status_message=f"internal error: {exc}")
    if result.errors:
        first = result.errors[0]
        message = f"{len(result.errors)} entries failed, first {first.path}: {first.error}"
        return _end(
            deps, job, worker_id, "FAILED", status_message=message, bytes_transferred=result.bytes
        )
    return _finish(deps, job, worker_id, result)


def _restore(deps: Deps, job: Record, control: JobControl) -> restorer.RestoreResult:
    metadata = dict(job["metadata"] or {})
    target, overwrite = check_target(metadata, deps.path_policy)  # resolved again, now
    items = parse_items(metadata.get("items"))
    with catalog.db.transaction(deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, job["recovery_point_arn"])
        vault = catalog.vaults.get_by_arn(conn, rp["backup_vault_arn"])

    def on_progress(p: Progress) -> None:
        pct = 100.0 * p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        control.report(percent_done=min(99.9, pct), bytes_transferred=p.bytes_done)

    os.makedirs(target, exist_ok=True)
    if os.path.realpath(target) != target:  # a symlink swapped in since the check
        raise host_paths.PathRefused(
            path=metadata.get("targetPath"),
            reason=f"it no longer resolves to {target!r} (a symlink changed); not followed",
        )
    with (
        vaults.open_repository(deps, vault) as repo,
        locks.locked(repo.backend, deps.clock, exclusive=False),
    ):
        return restorer.restore(
            repo,
            rp["engine_recovery_point_id"],
            target,
            include=items,
            overwrite=overwrite,
            progress=on_progress,
            clock=deps.clock,
        )


def _finish(deps: Deps, job: Record, worker_id: str, result: restorer.RestoreResult) -> str:
    now = deps.clock.now()
    minutes = int((now - (job["start_date"] or now)).total_seconds() // 60)
    with catalog.db.transaction(deps.engine) as conn:
        done = catalog.restore_jobs.complete(
            conn,
            job["restore_job_id"],
            worker_id,
            now,
            "COMPLETED",
            percent_done=100.0,
            bytes_transferred=result.bytes,
            status_message=f"restored {result.files} files, {result.bytes} bytes",
        )
        if not done:
            return "LOST"
        catalog.recovery_points.record_restore(conn, job["recovery_point_arn"], now)
        if job["source_resource_arn"] and catalog.resources.find(conn, job["source_resource_arn"]):
            catalog.resources.record_restore(
                conn,
                job["source_resource_arn"],
                job_creation_date=job["creation_date"],
                execution_time_minutes=minutes,
                recovery_point_creation_date=job["recovery_point_creation_date"],
            )
    return "COMPLETED"


def _end(deps: Deps, job: Record, worker_id: str, status: str, **fields: Any) -> str:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.restore_jobs.complete(
            conn, job["restore_job_id"], worker_id, deps.clock.now(), status, **fields
        )
    return status


def recover(deps: Deps, now: datetime) -> list[Record]:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.recover_expired_leases(conn, now)
