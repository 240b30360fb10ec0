"""Copy jobs: StartCopyJob and friends, a rule's CopyActions, and running one copy.

Start checks what the caller may know now (the source point is theirs, in the vault
they name; a destination in their own account exists) and queues the job CREATED, with
the DestinationRecoveryPointArn it will produce. A plan rule's CopyActions queue one
job per action in the same transaction that records a successful backup of that rule
(:func:`queue_rule_copies`, called by ``backup_jobs``). A worker claims the job
(RUNNING) and:

1. decides whether the source account may copy into the destination vault: AWS's rule,
   the destination vault's access policy must allow ``backup:CopyIntoBackupVault`` to
   the source account (the same account is allowed unless the policy denies it). A
   refusal, or a destination that does not exist in another account, FAILS the job with
   AWS's message, :data:`ACCESS_DENIED` (the two are not told apart: the message
   must not reveal another account's vaults);
2. checks the copy's retention against the destination's Vault Lock;
3. copies with :func:`snowvault.engine.copier.copy_recovery_point` under
   shared repository locks on both vaults: only the blobs the destination lacks are
   written, encrypted under the destination vault's key;
4. in ONE transaction completes the job (BytesTransferred: plaintext bytes written;
   BackupSizeInBytes: the point's size) and records the destination recovery point in
   the destination's account and region (creation date and, unless the job gives one,
   lifecycle kept from the source, as AWS does).

A CONTINUOUS point (PostgreSQL point-in-time: a chain of base backups and WAL) is copied
as AWS copies one: the copy is a SNAPSHOT (``model.jobs.copied_point_type``). The worker
copies the chain's newest base backup (an engine point in the snapshot format of the
PostgreSQL plugin), so the destination point is an ordinary snapshot point: no
``continuous_points`` row, no window, restored by the plugin (``targetDirectory``, or
``targetDsn`` + ``databases``) to the cluster as it was when that base backup ended,
which is its CreationDate. A chain with no base backup yet FAILS the job. A continuous
rule's CopyActions queue one copy per action after each new base backup
(:func:`queue_continuous_copies`, called by the supervisor).

A failed or lost run leaves what it wrote for the orphan prune of the destination vault;
a retry finds the blobs that did land and skips them.

Abuse case: a caller names a vault ARN in another account. They learn nothing about it
at the call (the job is queued either way) and nothing from the job but AWS's
access-denied message; what lands there is what that account's policy allows, and it
is that account's recovery point (the source account does not see it, the destination
account does not see the source).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_points
from snowvault.control.model import continuous as continuous_rules
from snowvault.control.model import iam, lifecycle
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import CopyJob
from snowvault.control.services import authorization, jobs, plugin_io, vault_lock, vaults
from snowvault.control.services.base import Caller, Deps, JobControl
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import Conflict, InvalidInput, NotFound, SnowvaultError
from snowvault.engine import copier, locks
from snowvault.engine.repository import Repository

log = logging.getLogger("snowvault.jobs")

Record = catalog.db.Record
OPERATION = "StartCopyJob"
ACTION = "backup:CopyIntoBackupVault"
ACCESS_DENIED = "Access Denied trying to call AWS Backup service"
"""AWS's StatusMessage of a copy job the destination vault's access policy refuses."""
COPYABLE = ("COMPLETED", "PARTIAL", "AVAILABLE")
CONTINUOUS_COPYABLE = ("CREATING", "COMPLETED", "STOPPED")
"""A continuous point is copyable once it exists (its newest base backup is what is
copied; none yet fails the job) and while it is restorable after its rule stopped."""


@dataclass(frozen=True)
class StartRequest:
    """StartCopyJob's input, as the services need it."""

    recovery_point_arn: str
    source_vault_name: str
    destination_vault_arn: str
    iam_role_arn: str | None = None
    idempotency_token: str | None = None
    lifecycle: Mapping[str, Any] | None = None


def _destination_arn(text: str) -> arns.Arn:
    try:
        arn = arns.Arn.parse(text)
    except InvalidInput:
        arn = None
    if arn is None or arn.service != "backup" or arn.resource_type != "backup-vault":
        detail = f"DestinationBackupVaultArn {text!r} is not a backup vault ARN"
        raise InvalidInput(detail, field="DestinationBackupVaultArn", detail=detail)
    return arn


def _copy_source(conn: Connection, rp: job_rules.RecoveryPoint, destination: str) -> Any:
    """The job's source and destination; a destination in the source's own account must
    exist (ResourceNotFoundException), another account's is not looked at."""
    dest = _destination_arn(destination)
    if destination == rp.backup_vault_arn:
        detail = "the destination backup vault is the source backup vault"
        raise InvalidInput(detail, field="DestinationBackupVaultArn", detail=detail)
    vault_type = key_arn = None
    if dest.account == rp.account_id:
        row = catalog.vaults.get_by_arn(conn, destination)  # NotFound: it does not exist
        vault_type, key_arn = row["vault_type"], row["encryption_key_arn"]
    return job_rules.CopySource(rp, destination, vault_type, key_arn)


def _point(conn: Connection, caller: Caller, req: StartRequest) -> job_rules.RecoveryPoint:
    rp = catalog.recovery_points.find(conn, req.recovery_point_arn)
    if (
        rp is None
        or (rp.account_id, rp.region) != (caller.account_id, caller.region)
        or rp.backup_vault_name != req.source_vault_name
    ):
        raise NotFound(kind="recovery point", name=req.recovery_point_arn)
    continuous = continuous_points.find(conn, rp.arn) is not None
    if rp.status not in (CONTINUOUS_COPYABLE if continuous else COPYABLE):
        raise Conflict(detail=f"recovery point {rp.arn} is {rp.status}; it cannot be copied")
    if (
        lifecycle.storage_class_at(rp.calculated_lifecycle, caller.now)
        == lifecycle.StorageClass.COLD
    ):
        raise Conflict(detail=f"recovery point {rp.arn} is in cold storage: it cannot be copied")
    if rp.is_parent:
        raise InvalidInput(
            detail=f"recovery point {rp.arn} is a composite point: copy its members instead"
        )
    return rp


def destination_point_arn(vault_arn: str) -> str:
    """A new recovery point ARN in the destination vault's region and account."""
    vault = arns.Arn.parse(vault_arn)
    return arns.build("backup", vault.region, vault.account, f"recovery-point:{ids.new_uuid()}")


def start(deps: Deps, caller: Caller, req: StartRequest) -> CopyJob:
    """StartCopyJob: returns the job (the stored one for a repeated token)."""
    lifecycle.lifecycle_from_api(req.lifecycle)  # InvalidInput for a bad one
    with catalog.db.transaction(deps.engine) as conn:
        if req.idempotency_token:
            seen = catalog.idempotency.lookup(
                conn, account_id=caller.account_id, operation=OPERATION, token=req.idempotency_token
            )
            if seen is not None:
                return catalog.copy_jobs.get(conn, seen["CopyJobId"])
        rp = _point(conn, caller, req)
        source = _copy_source(conn, rp, req.destination_vault_arn)
        new = job_rules.new_copy_job(
            job_id=ids.new_uuid(),
            source=source,
            now=caller.now,
            destination_recovery_point_arn=destination_point_arn(req.destination_vault_arn),
            iam_role_arn=req.iam_role_arn,
            lifecycle=dict(req.lifecycle) if req.lifecycle else None,
            idempotency_token=req.idempotency_token,
        )
        job = catalog.copy_jobs.create(conn, new)
        if req.idempotency_token:
            first = catalog.idempotency.remember(
                conn,
                account_id=caller.account_id,
                operation=OPERATION,
                token=req.idempotency_token,
                result={"CopyJobId": job.copy_job_id},
                now=caller.now,
            )
            if first["CopyJobId"] != job.copy_job_id:
                raise Conflict(detail="a concurrent request used the same IdempotencyToken")
        return job


def queue_rule_copies(conn: Connection, backup: job_rules.BackupJob, now: datetime) -> list[str]:
    """One copy job per CopyAction of the rule ``backup`` ran for, of the point it just
    recorded (in the caller's transaction); the new job ids. A destination in the same
    account that no longer exists is skipped with a warning (the rule still names it)."""
    if not (backup.backup_plan_id and backup.backup_plan_version and backup.backup_rule_id):
        return []
    try:
        version = catalog.plans.get_version(conn, backup.backup_plan_id, backup.backup_plan_version)
    except NotFound:
        return []
    rule = next(
        (r for r in version["document"]["Rules"] if r.get("RuleId") == backup.backup_rule_id),
        None,
    )
    rp = catalog.recovery_points.find(conn, backup.recovery_point_arn)
    if rule is None or rp is None:
        return []
    return _queue_actions(
        conn,
        rp,
        rule,
        now,
        iam_role_arn=backup.iam_role_arn,
        created_by=backup.created_by,
        created_by_backup_job_id=backup.job_id,
        who=f"backup job {backup.job_id}",
    )


def queue_continuous_copies(
    conn: Connection, rp_arn: str, rule: Mapping[str, Any], now: datetime
) -> list[str]:
    """One copy job per CopyAction of the continuous ``rule``, of continuous point
    ``rp_arn``, queued (in the caller's transaction) when a new base backup joined its
    chain: each copy is a snapshot of that base backup. The new job ids."""
    rp = catalog.recovery_points.find(conn, rp_arn)
    if rp is None or not rule.get("CopyActions"):
        return []
    return _queue_actions(
        conn,
        rp,
        rule,
        now,
        iam_role_arn=rp.iam_role_arn,
        created_by=rp.created_by,
        created_by_backup_job_id=None,
        who=f"continuous point {rp_arn}",
    )


def _queue_actions(
    conn: Connection,
    rp: job_rules.RecoveryPoint,
    rule: Mapping[str, Any],
    now: datetime,
    *,
    iam_role_arn: str | None,
    created_by: Mapping[str, Any] | None,
    created_by_backup_job_id: str | None,
    who: str,
) -> list[str]:
    made = []
    for action in rule.get("CopyActions") or ():
        target = str(action["DestinationBackupVaultArn"])
        try:
            source = _copy_source(conn, rp, target)
        except (NotFound, InvalidInput) as exc:
            log.warning("%s: copy action to %s skipped: %s", who, target, exc)
            continue
        new = job_rules.new_copy_job(
            job_id=ids.new_uuid(),
            source=source,
            now=now,
            destination_recovery_point_arn=destination_point_arn(target),
            iam_role_arn=iam_role_arn,
            lifecycle=action.get("Lifecycle") or None,
            created_by=created_by,
            created_by_backup_job_id=created_by_backup_job_id,
        )
        made.append(catalog.copy_jobs.create(conn, new).copy_job_id)
    return made


def get(deps: Deps, caller: Caller, job_id: str) -> CopyJob:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.copy_jobs.get(conn, job_id, account_id=caller.account_id)


def list_jobs(
    deps: Deps,
    caller: Caller,
    filters: catalog.copy_jobs.CopyJobFilters,
    *,
    account_id: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.RecordPage[CopyJob]:
    if account_id not in (None, caller.account_id):
        return catalog.pagination.RecordPage([], None)  # no organizations: only one's own
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.copy_jobs.list_jobs(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            filters=filters,
            limit=limit,
            token=token,
        )


def summaries(
    deps: Deps,
    caller: Caller,
    *,
    period: str | None,
    state: str | None,
    resource_type: str | None,
    message_category: str | None,
) -> list[Record]:
    """ListCopyJobSummaries, with ListBackupJobSummaries' windows and filter rules."""
    # backup_jobs imports this module (CopyActions after a backup): import it late
    from snowvault.control.services import backup_jobs

    windows = backup_jobs.summary_windows(period or "ONE_DAY", caller.now)
    aggregate, only = backup_jobs.summary_filters(
        state=state, resource_type=resource_type, message_category=message_category
    )
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.copy_jobs.summaries(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            windows=windows,
            aggregate=aggregate,
            **only,
        )


# --- the worker side -----------------------------------------------------------------


def copy_refusal(conn: Connection, job: CopyJob, now: datetime) -> str | None:
    """Why the source account may not copy into the destination vault (None: it may):
    the destination's access policy decides ``backup:CopyIntoBackupVault`` for the
    source account's root, as AWS does; a missing vault in another account reads the
    same as a refusal."""
    vault = catalog.vaults.find_by_arn(conn, job.destination_backup_vault_arn)
    if vault is None:
        if not job.cross_account:
            return f"backup vault {job.destination_backup_vault_arn} does not exist"
        return ACCESS_DENIED
    request = iam.Request(
        iam.Principal.root(job.account_id),
        ACTION,
        job.destination_backup_vault_arn,
        str(vault["account_id"]),
        {},
        now,
    )
    policy = authorization.vault_policy(conn, job.destination_backup_vault_arn)
    return None if iam.evaluate(request, [], policy).allowed else ACCESS_DENIED


@dataclass(frozen=True)
class _Origin:
    """What a copy copies: the source point's engine point, creation date, size, status
    and message; for a continuous point, those of its chain's newest base backup (the
    copy is a snapshot of the cluster as that base backup ended)."""

    engine_id: str
    creation_date: datetime
    size: int | None
    status: str
    status_message: str | None


def _origin(conn: Connection, rp: job_rules.RecoveryPoint) -> _Origin | str:
    """The copy's origin, or why there is none (one line)."""
    if continuous_points.find(conn, rp.arn) is None:
        return _Origin(
            rp.engine_recovery_point_id or "",
            rp.creation_date,
            rp.backup_size_in_bytes,
            str(rp.status),
            rp.status_message,
        )
    newest = continuous_rules.bases(continuous_points.pieces(conn, rp.arn))
    if not newest:
        return (
            f"recovery point {rp.arn} is a continuous backup with no base backup yet: "
            "nothing to copy (try again after its first base backup)"
        )
    base = newest[-1]
    assert base.end_time is not None  # bases() keeps finished ones only
    when = base.end_time.isoformat().replace("+00:00", "Z")
    kind = job_rules.copied_point_type("CONTINUOUS")
    return _Origin(
        base.engine_id,
        base.end_time,
        base.size,
        "COMPLETED",
        f"{kind} copy of a continuous backup: the cluster as its base backup ended at {when}",
    )


def run(deps: Deps, job: CopyJob, worker_id: str, control: JobControl) -> str:
    """Run a claimed copy job (see the module doc); returns its final state."""
    with catalog.db.read_transaction(deps.engine) as conn:
        refusal = copy_refusal(conn, job, deps.clock.now())
        rp = catalog.recovery_points.get(conn, job.source_recovery_point_arn)
        origin = _origin(conn, rp)
        source = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
        dest = (
            None if refusal else catalog.vaults.get_by_arn(conn, job.destination_backup_vault_arn)
        )
    if refusal is not None or dest is None:
        category = "ACCESS_DENIED" if refusal == ACCESS_DENIED else "MISSING_VAULT"
        return _end(deps, job, worker_id, "FAILED", status_message=refusal, category=category)
    if isinstance(origin, str):
        return _end(deps, job, worker_id, "FAILED", status_message=origin)
    vault_lock.check_job_retention(deps, dest, job.destination_recovery_point_lifecycle)
    result = _copy(deps, job, rp, origin, source, dest, control)
    try:
        state = _record(deps, job, worker_id, rp, origin, dest, result)
    except NotFound as exc:
        message = f"the destination vault was deleted while the job ran ({exc})"
        return _end(deps, job, worker_id, "FAILED", status_message=message)
    _protect(deps, job, dest)
    return state


@contextmanager
def _locked(deps: Deps, vault: Record) -> Iterator[Repository]:
    with (
        vaults.open_repository(deps, vault) as repo,
        locks.locked_repository(
            repo, deps.clock, exclusive=False, wait_seconds=plugin_io.PRUNE_WAIT_SECONDS
        ),
    ):
        yield repo


def _reporter(control: JobControl) -> Callable[[copier.CopyCounts], None]:
    def report(counts: copier.CopyCounts) -> None:
        total = counts.expected_bytes or counts.bytes_total
        done = min(counts.bytes_total, total)
        control.report(
            percent_done=round(100.0 * done / total, 1) if total else 0.0,
            bytes_transferred=counts.bytes_written,
        )

    return report


def _copy(
    deps: Deps,
    job: CopyJob,
    rp: job_rules.RecoveryPoint,
    origin: _Origin,
    source: Record,
    dest: Record,
    control: JobControl,
) -> copier.CopyResult:
    metadata = {
        "recovery_point_arn": job.destination_recovery_point_arn,
        "copy_job_id": job.copy_job_id,
        "source_recovery_point_arn": rp.arn,
    }
    with _locked(deps, source) as src, _locked(deps, dest) as dst:
        return copier.copy_recovery_point(
            src,
            dst,
            origin.engine_id,
            metadata=metadata,
            progress=_reporter(control),
        )


def _record(
    deps: Deps,
    job: CopyJob,
    worker_id: str,
    rp: job_rules.RecoveryPoint,
    origin: _Origin,
    dest: Record,
    result: copier.CopyResult,
) -> str:
    now = deps.clock.now()
    counts = result.counts
    lc = job.destination_recovery_point_lifecycle
    calc = lifecycle.calculated_lifecycle(lifecycle.lifecycle_from_api(lc), origin.creation_date)
    partial = origin.status == "PARTIAL"
    state = job_rules.CopyJobState.PARTIAL if partial else "COMPLETED"
    message = (
        f"copied {counts.blobs_written} of {counts.blobs_total} blobs, "
        f"{counts.bytes_written} of {counts.bytes_total} bytes (the rest was there)"
    )
    with catalog.db.transaction(deps.engine) as conn:
        # exclusive, not shared: the new point's count updates this row, and two points
        # landing at once under FOR SHARE deadlock on PostgreSQL (as backups did, 4bb94f2)
        catalog.vaults.lock(conn, dest["arn"], shared=False)  # NotFound if it was deleted
        done = catalog.copy_jobs.QUEUE.complete(
            conn,
            job_id=job.copy_job_id,
            worker_id=worker_id,
            now=now,
            state=state,
            percent_done=100.0,
            bytes_transferred=counts.bytes_written,
            backup_size_in_bytes=origin.size or counts.bytes_total,
            status_message=message,
            message_category="SUCCESS" if state == "COMPLETED" else "PARTIAL",
            destination_vault_type=dest["vault_type"],
            destination_encryption_key_arn=dest["encryption_key_arn"],
        )
        if not done:
            log.warning("copy job %s: lease lost before completion", job.copy_job_id)
            return "LOST"
        arn = job.destination_recovery_point_arn
        catalog.recovery_points.create(
            conn,
            arn=arn,
            account_id=dest["account_id"],
            region=dest["region"],
            backup_vault_name=dest["name"],
            backup_vault_arn=dest["arn"],
            source_backup_vault_arn=rp.backup_vault_arn,
            vault_type=dest["vault_type"],
            engine_recovery_point_id=result.rp_id,
            resource_arn=rp.resource_arn,
            resource_type=rp.resource_type,
            resource_name=rp.resource_name,
            source_job_id=job.copy_job_id,
            status="PARTIAL" if partial else "COMPLETED",
            status_message=origin.status_message,
            creation_date=origin.creation_date,  # AWS: a copy keeps its source's creation date
            initiation_date=job.creation_date,
            completion_date=now,
            backup_size_in_bytes=origin.size,
            lifecycle=lc,
            move_to_cold_at=calc.move_to_cold_storage_at,
            delete_at=calc.delete_at,
            encryption_key_arn=dest["encryption_key_arn"],
            encryption_key_type=dest["encryption_key_type"],
            composite_member_identifier=rp.composite_member_identifier,
        )
        catalog.tags.tag(conn, arn, catalog.tags.list_for(conn, rp.arn))
    return state


def _protect(deps: Deps, job: CopyJob, dest: Record) -> None:
    """Give the copy's objects their store retention (a locked destination on S3)."""
    with catalog.db.read_transaction(deps.engine) as conn:
        point = catalog.recovery_points.find(conn, job.destination_recovery_point_arn)
    if point is not None:
        try:
            vault_lock.protect_recovery_point(deps, dest, point, deps.clock.now())
        except SnowvaultError:
            log.exception("copy job %s: store retention not set", job.copy_job_id)


def _end(
    deps: Deps,
    job: CopyJob,
    worker_id: str,
    state: str,
    *,
    status_message: str | None = None,
    category: str | None = None,
    **fields: Any,
) -> str:
    """End a job that made no recovery point; what it wrote is left for the orphan prune."""
    now = deps.clock.now()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.copy_jobs.QUEUE.complete(
            conn,
            job_id=job.copy_job_id,
            worker_id=worker_id,
            now=now,
            state=state,
            status_message=status_message,
            message_category=category or state,
            **fields,
        )
        if catalog.vaults.find_by_arn(conn, job.destination_backup_vault_arn) is not None:
            vaults.mark_orphans(conn, job.destination_backup_vault_arn, now)
    return state


def _lost(conn: Connection, lost: Sequence[CopyJob], now: datetime) -> None:
    """Jobs whose worker died: what the lost run wrote is left for the orphan prune."""
    for arn in sorted({job.destination_backup_vault_arn for job in lost}):
        if catalog.vaults.find_by_arn(conn, arn) is not None:
            vaults.mark_orphans(conn, arn, now)


JOB_KIND = jobs.JobKind(
    name=job_rules.Kind.COPY, queue=catalog.copy_jobs.QUEUE, run=run, end=_end, on_lost=_lost
)
