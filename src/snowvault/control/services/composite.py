"""Groups (the Composite resource type): one backup job of a group is a PARENT job
making a composite recovery point, with one CHILD job and one nested recovery point per
member, AWS-style (IsParent, ParentJobId, ParentRecoveryPointArn,
CompositeMemberIdentifier). See docs/resources/composite.md.

- Registration (:func:`check_members`): the plugin checked the members list's shape;
  here each member must be a registered resource of the caller's account and region and
  not itself a group.
- Backup (:func:`run`, called by ``backup_jobs.run`` for a parent job): the parent's
  worker inserts every child job at once, already RUNNING (never queued, so no other
  job slips in between) and runs them in up to :data:`MAX_PARALLEL` threads, so the
  members are captured as close together in time as their plugins allow. Each child
  is an ordinary backup of its member (its own plugin, sink and recovery point, made by
  ``backup_jobs``), linked to the parent. The parent ends by the model's rule
  (``jobs.composite_outcome``): COMPLETED when every child is, PARTIAL when some are
  not, FAILED (and no parent point) when none made a point. A member that already has a
  running backup job gets a FAILED child at once (one running job per resource).
- Stop and loss: a stop request reaches every child through the shared progress report
  (each ends ABORTED, the parent too, and the children points that were made stand
  alone); a lost parent worker ends its active children FAILED (:func:`lost`); a parent
  that runs again detaches what an earlier attempt left.
- Deletion (:func:`check_delete`): a nested point is deleted with its composite point,
  not alone (unless :func:`disassociate` made it standalone first); deleting the
  composite point checks Vault Lock and legal holds for it and every child first, then
  deletes all (nothing when one is protected).
- Restore (:func:`run_restore`, called by ``restore_jobs.run`` for a parent restore
  job): Metadata ``<member>.<key>`` per member to restore; one child restore job per
  chosen member (ParentJobId), each an ordinary restore of its nested point by its own
  plugin, in turn.

Must not depend on the scheduler, the composition root or any interface (nor on
``backup_jobs``, which calls in with the per-member functions).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from snowvault import plugins
from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import lifecycle
from snowvault.control.model.jobs import BackupJob, RestoreJob
from snowvault.control.services import plugin_io, vaults
from snowvault.control.services.base import Caller, Deps, JobControl
from snowvault.control.services.errors import JobStopped
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import Conflict, InvalidInput, SnowvaultError

log = logging.getLogger("snowvault.jobs")

RESOURCE_TYPE = plugins.composite.TYPE_NAME
MAX_PARALLEL = 4
"""Children backed up at once (members beyond wait for a free thread)."""
BUSY_MESSAGE = "another backup job of this resource is running"
LOST_MESSAGE = "the worker running the parent job stopped answering"
RETRIED_MESSAGE = "the parent job started again"

MemberRun = Callable[[BackupJob, JobControl, Mapping[str, Any]], str]
"""Back one child up and record its point (with these extra point columns): its state."""
MemberEnd = Callable[..., str]
"""End a child that made no point: ``(deps, job, worker_id, state, status_message=)``."""


# --- registration --------------------------------------------------------------------


def members_of(resource: Mapping[str, Any]) -> list[str]:
    """The member ARNs of a group's catalog row (its ``members`` property)."""
    props = resource.get("properties") or {}
    if isinstance(props, str):
        props = json.loads(props)
    return plugins.composite.parse_members(props.get("members"))


def check_members(
    conn: Connection,
    caller: Caller,
    properties: Mapping[str, str],
    worker_label: str | None = None,
) -> None:
    """RegisterResource of a group: every member is a registered resource of the caller's
    account and region, and not a group (the same answer whether a member is missing or
    another account's, so a group is no probe of other accounts). The worker that claims
    the group backs every member up, so a member bound to workers of a label (WorkerLabel)
    needs the group to carry the same label."""
    for member in plugins.composite.parse_members(properties.get("members")):
        row = catalog.resources.find(conn, member)
        if row is None or (row["account_id"], row["region"]) != (caller.account_id, caller.region):
            raise InvalidInput(detail=f"member {member} is not a registered resource")
        if row["resource_type"] == RESOURCE_TYPE:
            raise InvalidInput(detail=f"member {member} is a group; groups do not nest")
        label = row["worker_label"]
        if label is not None and label != worker_label:
            raise InvalidInput(
                detail=f"member {member} runs on workers labelled {label!r}: "
                f"register the group with WorkerLabel {label!r}"
            )


# --- backup --------------------------------------------------------------------------


class _Progress:
    """The children's progress summed into the parent's report (thread-safe); the parent
    control's answer (JobStopped) reaches every child."""

    def __init__(self, control: JobControl, sizes: Mapping[str, int] | None = None) -> None:
        self._control = control
        self._lock = threading.Lock()
        self._by_child: dict[str, dict[str, Any]] = {}
        self._sizes = dict(sizes or {})  # a child's size when it reports none (restores)

    def child(self, job_id: str) -> JobControl:
        parent = self

        class _Child:
            def report(self, **progress: Any) -> None:
                parent.update(job_id, progress)

        return _Child()

    def update(self, job_id: str, progress: Mapping[str, Any]) -> None:
        with self._lock:
            self._by_child.setdefault(job_id, {}).update(progress)
            rows = dict(self._by_child)
        done = sum(int(r.get("bytes_transferred") or 0) for r in rows.values())
        total = sum(int(r.get("backup_size_in_bytes") or 0) for r in rows.values())
        if self._sizes:  # a restore: the points' sizes are the whole
            total = sum(self._sizes.values())
            self._control.report(
                percent_done=min(99.9, 100.0 * done / total) if total else 0.0,
                bytes_transferred=done,
            )
            return
        pct = min(99.9, 100.0 * done / total) if total else 0.0
        self._control.report(percent_done=pct, bytes_transferred=done, backup_size_in_bytes=total)


def _child_job(parent: BackupJob, member: Record, worker_id: str, now: datetime) -> BackupJob:
    """A child of ``parent`` for ``member``, RUNNING on the parent's worker."""
    return dataclasses.replace(
        parent,
        job_id=ids.new_uuid(),
        resource_arn=member["arn"],
        resource_type=member["resource_type"],
        resource_name=member["name"],
        worker_label=member["worker_label"],
        recovery_point_arn=arns.build(
            "backup", parent.region, parent.account_id, f"recovery-point:{ids.new_uuid()}"
        ),
        idempotency_token=None,
        is_parent=False,
        parent_job_id=parent.job_id,
        state=job_rules.BackupJobState.RUNNING,
        status_message=None,
        message_category=None,
        creation_date=parent.creation_date,  # so its point's lifecycle is the parent's
        initiation_date=now,
        start_date=now,
        completion_date=None,
        percent_done=0.0,
        bytes_transferred=0,
        backup_size_in_bytes=None,
        lease_owner=worker_id,
        lease_expires_at=None,  # the parent's lease covers it
        heartbeat_at=now,
        attempts=1,
    )


def _start_children(
    deps: Deps, parent: BackupJob, worker_id: str
) -> tuple[dict[str, BackupJob], dict[str, str]]:
    """Insert one RUNNING child per member: member id -> child, and member id -> state of
    the members that got no running child (not registered any more: FAILED; busy: a
    FAILED child)."""
    now = deps.clock.now()
    running: dict[str, BackupJob] = {}
    ended: dict[str, str] = {}
    with catalog.db.transaction(deps.engine) as conn:
        group = catalog.resources.get(conn, parent.resource_arn)
        catalog.composite.end_active_children(
            conn, [parent.job_id], now=now, state="FAILED", message=RETRIED_MESSAGE
        )
        catalog.composite.detach(conn, parent.recovery_point_arn)
        for member_arn in members_of(group):
            ident = plugins.composite.member_identifier(member_arn)
            member = catalog.resources.find(conn, member_arn)
            ours = (parent.account_id, parent.region)
            if member is None or (member["account_id"], member["region"]) != ours:
                ended[ident] = "FAILED"
                continue
            child = _child_job(parent, member, worker_id, now)
            if catalog.composite.insert_child(conn, child):
                running[ident] = child
                continue
            busy = dataclasses.replace(
                child,
                state=job_rules.BackupJobState.FAILED,
                status_message=BUSY_MESSAGE,
                message_category="FAILED",
                completion_date=now,
                lease_owner=None,
            )
            catalog.composite.insert_child(conn, busy)
            ended[ident] = "FAILED"
    return running, ended


def run(
    deps: Deps,
    parent: BackupJob,
    worker_id: str,
    control: JobControl,
    *,
    member: MemberRun,
    end: MemberEnd,
) -> str:
    """Run a claimed parent job: its children together, then its own end and point."""
    running, states = _start_children(deps, parent, worker_id)
    progress = _Progress(control)

    def one(ident: str, child: BackupJob) -> str:
        fields = {
            "parent_recovery_point_arn": parent.recovery_point_arn,
            "composite_member_identifier": ident,
        }
        try:
            return member(child, progress.child(child.job_id), fields)
        except JobStopped as exc:
            return end(deps, child, worker_id, "ABORTED", status_message=str(exc))
        except (SnowvaultError, OSError) as exc:
            return end(deps, child, worker_id, "FAILED", status_message=str(exc))
        except Exception as exc:
            log.exception("child job %s of %s failed", child.job_id, parent.job_id)
            return end(deps, child, worker_id, "FAILED", status_message=f"internal error: {exc}")

    if running:
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(running)), "composite") as pool:
            futures = {ident: pool.submit(one, ident, child) for ident, child in running.items()}
            states.update({ident: future.result() for ident, future in futures.items()})
    try:
        control.report()  # a stop asked meanwhile ends the parent ABORTED
    except JobStopped:
        with catalog.db.transaction(deps.engine) as conn:
            catalog.composite.detach(conn, parent.recovery_point_arn)
        raise
    return _record(deps, parent, worker_id, states)


def _record(deps: Deps, parent: BackupJob, worker_id: str, states: Mapping[str, str]) -> str:
    """Complete the parent and, unless no child made a point, make the composite point,
    in one transaction."""
    outcome = job_rules.composite_outcome(states)
    now = deps.clock.now()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.vaults.lock(conn, parent.backup_vault_arn)  # exclusive, as backup_jobs._record
        vault = catalog.vaults.get_by_arn(conn, parent.backup_vault_arn)
        kids = catalog.composite.children(conn, parent.job_id)
        points = catalog.composite.child_points(conn, parent.recovery_point_arn)
        size = sum(p.backup_size_in_bytes or 0 for p in points)
        done = catalog.jobs.QUEUE.complete(
            conn,
            job_id=parent.job_id,
            worker_id=worker_id,
            now=now,
            state=outcome.state,
            percent_done=100.0,
            bytes_transferred=sum(k.bytes_transferred or 0 for k in kids),
            backup_size_in_bytes=size,
            status_message=outcome.status_message,
            message_category=outcome.message_category,
        )
        if not done:
            log.warning("parent backup job %s: lease lost before completion", parent.job_id)
            return "LOST"
        if outcome.state == job_rules.BackupJobState.FAILED:
            return outcome.state
        calc = lifecycle.calculated_lifecycle(
            lifecycle.lifecycle_from_api(parent.lifecycle), parent.creation_date
        )
        catalog.recovery_points.create(
            conn,
            arn=parent.recovery_point_arn,
            account_id=parent.account_id,
            region=parent.region,
            backup_vault_name=vault["name"],
            backup_vault_arn=vault["arn"],
            vault_type=vault["vault_type"],
            engine_recovery_point_id=None,  # the children hold the data
            resource_arn=parent.resource_arn,
            resource_type=parent.resource_type,
            resource_name=parent.resource_name,
            source_job_id=parent.job_id,
            iam_role_arn=parent.iam_role_arn,
            status=outcome.point_status,
            status_message=outcome.status_message,
            creation_date=parent.creation_date,
            initiation_date=parent.initiation_date,
            completion_date=now,
            backup_size_in_bytes=size,
            lifecycle=parent.lifecycle,
            move_to_cold_at=calc.move_to_cold_storage_at,
            delete_at=calc.delete_at,
            encryption_key_arn=vault["encryption_key_arn"],
            encryption_key_type=vault["encryption_key_type"],
            created_by=parent.created_by,
            backup_plan_id=parent.backup_plan_id,
            is_parent=True,
        )
        catalog.tags.tag(conn, parent.recovery_point_arn, dict(parent.recovery_point_tags or {}))
        catalog.resources.record_backup(
            conn,
            parent.resource_arn,
            when=now,
            vault_arn=vault["arn"],
            recovery_point_arn=parent.recovery_point_arn,
        )
    return outcome.state


def lost(conn: Connection, parents: Sequence[BackupJob], now: datetime) -> None:
    """Parent jobs whose worker died: their active children end FAILED with them."""
    ids_ = [job.job_id for job in parents if job.is_parent]
    catalog.composite.end_active_children(conn, ids_, now=now, state="FAILED", message=LOST_MESSAGE)


def child_states(deps: Deps, caller: Caller, job: BackupJob) -> dict[str, int]:
    """DescribeBackupJob's ChildJobsInState of a parent job (state -> count)."""
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.jobs.child_state_counts(conn, job.job_id)


# --- deletion ------------------------------------------------------------------------


def check_delete(
    deps: Deps,
    rp: job_rules.RecoveryPoint,
    guard: Callable[[job_rules.RecoveryPoint], bool],
) -> list[tuple[job_rules.RecoveryPoint, bool]]:
    """What DeleteRecoveryPoint of ``rp`` deletes, each with its guard's answer (Vault
    Lock, legal holds: ``guard`` raises when a point may not go; True: bypass governance
    retention), children first. A nested point whose composite point exists is refused
    (Conflict): it goes with its composite point."""
    with catalog.db.read_transaction(deps.engine) as conn:
        parent = (
            catalog.recovery_points.find(conn, rp.parent_recovery_point_arn)
            if rp.parent_recovery_point_arn
            else None
        )
        kids = catalog.composite.child_points(conn, rp.arn) if rp.is_parent else []
    if parent is not None:
        raise Conflict(
            detail=f"recovery point {rp.arn} is nested in the composite recovery point "
            f"{parent.arn}; delete that one (it takes its nested points with it)"
        )
    return [(point, guard(point)) for point in [*kids, rp]]


def disassociate(deps: Deps, caller: Caller, vault_name: str, arn: str) -> None:
    """DisassociateRecoveryPointFromParent: a nested point becomes a standalone point of
    its member (deleted on its own from then on; its composite point loses it). Refused
    (InvalidRequestException) for a point that is not nested."""
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        point = catalog.recovery_points.get(conn, arn, vault_arn=vault["arn"])
        if point.status == "DELETING" or not catalog.composite.disassociate(conn, arn):
            raise Conflict(detail=f"recovery point {arn} is not nested in a composite one")


# --- restore -------------------------------------------------------------------------


def restore_plan(
    deps: Deps, rp: job_rules.RecoveryPoint, metadata: Mapping[str, str]
) -> list[tuple[job_rules.RecoveryPoint, dict[str, str]]]:
    """The children a restore of composite point ``rp`` restores, each with its own
    Metadata (``<member>.<key>`` split by member); refuses a member the point lacks and
    checks each part with the member type's plugin."""
    wanted = plugins.composite.split_metadata(metadata)
    with catalog.db.read_transaction(deps.engine) as conn:
        kids = {
            p.composite_member_identifier: p for p in catalog.composite.child_points(conn, rp.arn)
        }
    unknown = sorted(set(wanted) - set(kids))
    if unknown:
        known = ", ".join(sorted(k for k in kids if k)) or "none"
        raise InvalidInput(
            detail=f"the composite point has no member {', '.join(unknown)} (members: {known})"
        )
    plan = []
    for ident in sorted(wanted):
        child = kids[ident]
        deps.plugins.get(child.resource_type).check_restore(wanted[ident], deps.path_policy)
        plan.append((child, wanted[ident]))
    return plan


def run_restore(
    deps: Deps,
    parent: RestoreJob,
    worker_id: str,
    control: JobControl,
    *,
    member: Callable[[RestoreJob, JobControl], str],
    end: MemberEnd,
) -> str:
    """Run a claimed parent restore job (of a composite point): one child restore job per
    member its Metadata names, RUNNING on this worker, run in turn (each an ordinary
    restore of its nested point with its own part of the Metadata). COMPLETED when every
    child is; FAILED, naming the members that were not, otherwise."""
    with catalog.db.read_transaction(deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, parent.recovery_point_arn)
    plan = restore_plan(deps, rp, dict(parent.metadata or {}))
    now = deps.clock.now()
    children: dict[str, RestoreJob] = {}
    with catalog.db.transaction(deps.engine) as conn:
        catalog.composite.end_active_restore_children(
            conn, [parent.restore_job_id], now=now, message=RETRIED_MESSAGE
        )
        for point, part in plan:
            children[point.composite_member_identifier or point.arn] = catalog.restore_jobs.create(
                conn,
                restore_job_id=ids.new_uuid(),
                account_id=parent.account_id,
                region=parent.region,
                recovery_point_arn=point.arn,
                creation_date=parent.creation_date,
                status=job_rules.RestoreJobStatus.RUNNING,
                backup_vault_arn=point.backup_vault_arn,
                source_resource_arn=point.resource_arn,
                resource_type=point.resource_type,
                metadata=part,
                iam_role_arn=parent.iam_role_arn,
                created_by=parent.created_by,
                recovery_point_creation_date=point.creation_date,
                backup_size_in_bytes=point.backup_size_in_bytes,
                percent_done=0.0,
                start_date=now,
                lease_owner=worker_id,  # the parent's lease covers it
                heartbeat_at=now,
                attempts=1,
                parent_job_id=parent.restore_job_id,
            )
    sizes = {c.restore_job_id: c.backup_size_in_bytes or 0 for c in children.values()}
    progress = _Progress(control, sizes)
    states: dict[str, str] = {}
    for ident, child in children.items():
        try:
            states[ident] = member(child, progress.child(child.restore_job_id))
        except (SnowvaultError, OSError) as exc:
            states[ident] = end(deps, child, worker_id, "FAILED", status_message=str(exc))
        except Exception as exc:
            log.exception("child restore %s of %s failed", child.restore_job_id, parent.id)
            message = f"internal error: {exc}"
            states[ident] = end(deps, child, worker_id, "FAILED", status_message=message)
    return _end_restore(deps, parent, worker_id, states)


def _end_restore(deps: Deps, parent: RestoreJob, worker_id: str, states: Mapping[str, str]) -> str:
    now = deps.clock.now()
    with catalog.db.transaction(deps.engine) as conn:
        kids = catalog.composite.restore_children(conn, parent.restore_job_id)
        done = sum(k.bytes_transferred or 0 for k in kids)
        missing = sorted(i for i, s in states.items() if s != "COMPLETED")
        if missing:
            status = job_rules.RestoreJobStatus.FAILED
            message = f"{len(states) - len(missing)} of {len(states)} members restored; " + (
                ", ".join(f"{i} {states[i]}" for i in missing)
            )
        else:
            status = job_rules.RestoreJobStatus.COMPLETED
            message = f"restored {len(states)} members, {done} bytes"
        ok = catalog.restore_jobs.QUEUE.complete(
            conn,
            job_id=parent.restore_job_id,
            worker_id=worker_id,
            now=now,
            state=status,
            percent_done=100.0 if not missing else None,
            bytes_transferred=done,
            status_message=message,
        )
        if not ok:
            return "LOST"
        if not missing:
            catalog.recovery_points.record_restore(conn, parent.recovery_point_arn, now)
    return status


def lost_restores(conn: Connection, parents: Sequence[RestoreJob], now: datetime) -> None:
    """Parent restore jobs whose worker died: their running children FAIL with them."""
    ids_ = [job.restore_job_id for job in parents if job.is_parent]
    catalog.composite.end_active_restore_children(conn, ids_, now=now, message=LOST_MESSAGE)


def restore_defaults(deps: Deps, rp: job_rules.RecoveryPoint) -> dict[str, str]:
    """GetRecoveryPointRestoreMetadata of a composite point: every child's own defaults,
    each key prefixed with its member (``directory/photos.targetPath``)."""
    out: dict[str, str] = {}
    with catalog.db.read_transaction(deps.engine) as conn:
        kids = catalog.composite.child_points(conn, rp.arn)
        resources = {k.arn: catalog.resources.find(conn, k.resource_arn) for k in kids}
    for child in kids:
        plugin = deps.plugins.get(child.resource_type)
        row = resources[child.arn]
        resource = None if row is None else plugin_io.resource_of(row)
        for key, value in plugin.restore_defaults(resource).items():
            out[f"{child.composite_member_identifier}.{key}"] = value
    return out
