"""A job's life as one model: kinds, states, transitions (as data) and the job records.

States are the values of the botocore backup model's enums (``BackupJobState``,
``RestoreJobStatus``, ``CopyJobState``, ``RecoveryPointStatus``), written out here because
the model reads no service model; tests/unit/model/test_jobs_model.py compares them with
botocore so they cannot drift.

    >>> can_transition(Kind.BACKUP, "RUNNING", "ABORTING")
    True
    >>> can_transition(Kind.RESTORE, "COMPLETED", "RUNNING")
    False
    >>> sorted(str(state) for state in BACKUP.final)
    ['ABORTED', 'COMPLETED', 'EXPIRED', 'FAILED', 'PARTIAL']

The catalog turns rows into :class:`BackupJob`, :class:`RestoreJob`, :class:`CopyJob` and
:class:`RecoveryPoint` (``from_row``: the fields are the table's columns);
:func:`new_backup_job` is the one constructor of a backup job, used by StartBackupJob
and by the scheduler alike; :func:`new_copy_job` the one of a copy job (StartCopyJob and
a rule's CopyActions).

Pure rules: no I/O, no wall clock. Depends only on ``snowvault.core`` and the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from snowvault.control.model import lifecycle as lifecycle_rules
from snowvault.control.model import windows


class Kind(StrEnum):
    """What a job does; each kind has its own table, queue and run function."""

    BACKUP = "backup"
    RESTORE = "restore"
    COPY = "copy"


class BackupJobState(StrEnum):
    """botocore ``BackupJobState``."""

    CREATED = "CREATED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    PARTIAL = "PARTIAL"


class RestoreJobStatus(StrEnum):
    """botocore ``RestoreJobStatus``."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ABORTED = "ABORTED"
    FAILED = "FAILED"


class CopyJobState(StrEnum):
    """botocore ``CopyJobState``."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIAL = "PARTIAL"


class RecoveryPointStatus(StrEnum):
    """botocore ``RecoveryPointStatus``."""

    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    DELETING = "DELETING"
    EXPIRED = "EXPIRED"
    AVAILABLE = "AVAILABLE"
    STOPPED = "STOPPED"
    CREATING = "CREATING"


@dataclass(frozen=True)
class StateMachine:
    """One kind's states and the moves between them.

    ``waiting``: may be claimed; ``running``: a worker holds the lease; ``stopping``: a
    stop was asked and the worker has not seen it yet; ``retry``: where a job handed back
    (or whose worker died with attempts left) waits again. A state with no way out is final.
    """

    kind: Kind
    states: tuple[str, ...]
    created: tuple[str, ...]
    waiting: tuple[str, ...]
    running: str
    stopping: str | None
    retry: str
    failed: str
    aborted: str
    transitions: Mapping[str, frozenset[str]]

    @property
    def active(self) -> tuple[str, ...]:
        """A worker holds (or held) the job's lease."""
        return (self.running,) + ((self.stopping,) if self.stopping else ())

    @property
    def final(self) -> frozenset[str]:
        return frozenset(s for s in self.states if not self.transitions.get(s))

    def can(self, from_state: str, to_state: str) -> bool:
        return to_state in self.transitions.get(from_state, frozenset())


_B = BackupJobState
BACKUP = StateMachine(
    kind=Kind.BACKUP,
    states=tuple(_B),
    created=(_B.CREATED, _B.FAILED),  # FAILED at once: a scheduled job whose vault is gone
    waiting=(_B.CREATED, _B.PENDING),
    running=_B.RUNNING,
    stopping=_B.ABORTING,
    retry=_B.PENDING,
    failed=_B.FAILED,
    aborted=_B.ABORTED,
    transitions={
        _B.CREATED: frozenset({_B.RUNNING, _B.ABORTED, _B.EXPIRED}),
        _B.PENDING: frozenset({_B.RUNNING, _B.ABORTED, _B.EXPIRED}),
        _B.RUNNING: frozenset(
            {_B.PENDING, _B.ABORTING, _B.COMPLETED, _B.PARTIAL, _B.FAILED, _B.ABORTED}
        ),
        # the worker may finish before it reads the stop request
        _B.ABORTING: frozenset({_B.ABORTED, _B.COMPLETED, _B.PARTIAL, _B.FAILED}),
    },
)

_R = RestoreJobStatus
RESTORE = StateMachine(
    kind=Kind.RESTORE,
    states=tuple(_R),
    created=(_R.PENDING,),
    waiting=(_R.PENDING,),
    running=_R.RUNNING,
    stopping=None,
    retry=_R.PENDING,
    failed=_R.FAILED,
    aborted=_R.ABORTED,
    transitions={
        _R.PENDING: frozenset({_R.RUNNING}),
        _R.RUNNING: frozenset({_R.PENDING, _R.COMPLETED, _R.FAILED, _R.ABORTED}),
    },
)

_C = CopyJobState
COPY = StateMachine(
    kind=Kind.COPY,
    states=tuple(_C),
    created=(_C.CREATED,),
    waiting=(_C.CREATED,),
    running=_C.RUNNING,
    stopping=None,  # StopCopyJob does not exist
    retry=_C.CREATED,
    failed=_C.FAILED,
    aborted=_C.FAILED,  # CopyJobState has no ABORTED: a worker told to stop fails the job
    transitions={
        _C.CREATED: frozenset({_C.RUNNING}),
        _C.RUNNING: frozenset({_C.CREATED, _C.COMPLETED, _C.PARTIAL, _C.FAILED}),
    },
)

MACHINES: Mapping[Kind, StateMachine] = {m.kind: m for m in (BACKUP, RESTORE, COPY)}


def can_transition(kind: Kind | str, from_state: str, to_state: str) -> bool:
    """May a job of ``kind`` move from ``from_state`` to ``to_state``?"""
    return MACHINES[Kind(kind)].can(from_state, to_state)


def fate(job: Job, now: datetime) -> windows.JobFate | None:
    """The window rule (:func:`windows.job_fate`) for a stored job; None: it has none.

    The catalog's SQL uses the same boundaries: at exactly StartBy a waiting job has
    expired, at exactly the completion deadline a running one is aborted."""
    if not isinstance(job, BackupJob):
        return None  # restore and copy jobs have no windows
    started = job.state in BACKUP.active
    deadline = job.complete_by if started else job.start_by
    if deadline is None:
        return None
    due = windows.JobDeadlines(
        scheduled_at=job.creation_date,
        start_by=job.start_by or deadline,
        complete_by=job.complete_by or deadline,
    )
    return windows.job_fate(due, now, started=started)


def stop_target(state: str) -> BackupJobState | None:
    """StopBackupJob: a waiting job is ABORTED at once, a running one goes ABORTING (its
    worker sees that on its next heartbeat); None: it cannot be stopped."""
    if state in BACKUP.waiting:
        return BackupJobState.ABORTED
    if state == BACKUP.running:
        return BackupJobState.ABORTING
    return None


@dataclass(frozen=True)
class BackupOutcome:
    """How a backup that ran to its end is recorded: the job's state, message and
    category, and the status of the recovery point it made."""

    state: BackupJobState
    status_message: str | None
    message_category: str
    point_status: RecoveryPointStatus


def backup_outcome(*, partial: bool, unreadable: int, warning: str | None = None) -> BackupOutcome:
    """PARTIAL when the backup left something out (``partial``), COMPLETED otherwise;
    ``unreadable`` entries are named in the status message either way, and so is the
    plugin's ``warning`` (its note's, e.g. BlockDevice's "read a live device: ...").

    >>> backup_outcome(partial=True, unreadable=2).state
    <BackupJobState.PARTIAL: 'PARTIAL'>
    >>> backup_outcome(partial=False, unreadable=0).message_category
    'SUCCESS'
    >>> backup_outcome(partial=False, unreadable=1, warning="read a live device").status_message
    '1 entries could not be read; read a live device'
    """
    parts = [f"{unreadable} entries could not be read" if unreadable else None, warning]
    message = "; ".join(p for p in parts if p) or None
    if partial:
        return BackupOutcome(
            BackupJobState.PARTIAL, message, "PARTIAL", RecoveryPointStatus.PARTIAL
        )
    return BackupOutcome(
        BackupJobState.COMPLETED, message, "SUCCESS", RecoveryPointStatus.COMPLETED
    )


def composite_outcome(children: Mapping[str, str]) -> BackupOutcome:
    """A parent (composite) backup job's end from its children's final states (member ->
    state): COMPLETED when every child is; PARTIAL (the parent point too: AWS's "a
    composite recovery point has one or more nested recovery points that were not in the
    backup") when some child made a point and another did not, or made a PARTIAL one;
    FAILED, with no parent point, when no child made a point.

    >>> composite_outcome({"directory/a": "COMPLETED", "directory/b": "FAILED"}).state
    <BackupJobState.PARTIAL: 'PARTIAL'>
    >>> composite_outcome({"directory/a": "COMPLETED"}).message_category
    'SUCCESS'
    """
    made = {m for m, s in children.items() if s in (_B.COMPLETED, _B.PARTIAL)}
    whole = {m for m, s in children.items() if s == _B.COMPLETED}
    if children and whole == set(children):
        return BackupOutcome(_B.COMPLETED, None, "SUCCESS", RecoveryPointStatus.COMPLETED)
    missing = ", ".join(f"{m} {children[m]}" for m in sorted(set(children) - whole))
    if made:
        message = f"{len(whole)} of {len(children)} members backed up whole; {missing}"
        return BackupOutcome(_B.PARTIAL, message, "PARTIAL", RecoveryPointStatus.PARTIAL)
    message = f"no member was backed up: {missing}"
    return BackupOutcome(_B.FAILED, message, "FAILED", RecoveryPointStatus.PARTIAL)


class _Row:
    """``from_row``/``as_row`` for a job record whose fields are its table's columns."""

    _enums: ClassVar[Mapping[str, type[StrEnum]]] = {}

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Self:
        names = _field_names(cls)
        values = {name: row[name] for name in names}
        for name, enum in cls._enums.items():
            if values[name] is not None:
                values[name] = enum(values[name])
        return cls(**values)

    def as_row(self) -> dict[str, Any]:
        """Column name -> value (documents shared, not copied)."""
        return {name: getattr(self, name) for name in _field_names(type(self))}


_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    if cls not in _NAMES:
        _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return _NAMES[cls]


@dataclass(frozen=True)
class BackupJob(_Row):
    """One backup job (a ``backup_jobs`` row)."""

    _enums: ClassVar[Mapping[str, type[StrEnum]]] = {"state": BackupJobState}
    kind: ClassVar[Kind] = Kind.BACKUP

    job_id: str
    account_id: str
    region: str
    backup_vault_name: str
    backup_vault_arn: str
    vault_type: str | None
    resource_arn: str
    resource_type: str
    resource_name: str | None
    state: BackupJobState
    status_message: str | None
    message_category: str | None
    creation_date: datetime
    initiation_date: datetime | None
    start_date: datetime | None
    completion_date: datetime | None
    start_by: datetime | None
    expected_completion_date: datetime | None
    percent_done: float | None
    bytes_transferred: int | None
    backup_size_in_bytes: int | None
    iam_role_arn: str | None
    idempotency_token: str | None
    backup_type: str | None
    backup_plan_id: str | None
    backup_plan_arn: str | None
    backup_plan_version: str | None
    backup_rule_id: str | None
    created_by: Mapping[str, Any] | None
    lifecycle: Mapping[str, Any] | None
    recovery_point_tags: Mapping[str, str] | None
    backup_options: Mapping[str, str] | None
    recovery_point_arn: str
    encryption_key_arn: str | None
    is_encrypted: bool
    is_parent: bool
    parent_job_id: str | None
    worker_label: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    attempts: int
    max_attempts: int

    @property
    def id(self) -> str:
        return self.job_id

    @property
    def complete_by(self) -> datetime | None:
        """When a running job must stop (the completion window)."""
        return self.expected_completion_date


@dataclass(frozen=True)
class RestoreJob(_Row):
    """One restore job (a ``restore_jobs`` row)."""

    _enums: ClassVar[Mapping[str, type[StrEnum]]] = {"status": RestoreJobStatus}
    kind: ClassVar[Kind] = Kind.RESTORE

    restore_job_id: str
    account_id: str
    region: str
    recovery_point_arn: str
    backup_vault_arn: str | None
    source_resource_arn: str | None
    resource_type: str | None
    metadata: Mapping[str, str] | None
    iam_role_arn: str | None
    idempotency_token: str | None
    status: RestoreJobStatus
    status_message: str | None
    creation_date: datetime
    start_date: datetime | None
    completion_date: datetime | None
    recovery_point_creation_date: datetime | None
    percent_done: float | None
    bytes_transferred: int | None
    backup_size_in_bytes: int | None
    expected_completion_time_minutes: int | None
    created_resource_arn: str | None
    created_by: Mapping[str, Any] | None
    validation_status: str | None
    validation_status_message: str | None
    deletion_status: str | None
    deletion_status_message: str | None
    is_parent: bool
    parent_job_id: str | None
    worker_label: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    attempts: int
    max_attempts: int

    @property
    def id(self) -> str:
        return self.restore_job_id

    @property
    def complete_by(self) -> datetime | None:
        return None  # restore jobs have no completion window


@dataclass(frozen=True)
class RecoveryPoint(_Row):
    """One recovery point (a ``recovery_points`` row): what a completed backup job left.

    ``move_to_cold_at``/``delete_at`` are its calculated lifecycle (the model computes
    them from ``lifecycle`` and ``creation_date``, the catalog stores them)."""

    _enums: ClassVar[Mapping[str, type[StrEnum]]] = {"status": RecoveryPointStatus}

    arn: str
    account_id: str
    region: str
    backup_vault_name: str
    backup_vault_arn: str
    source_backup_vault_arn: str | None
    vault_type: str | None
    engine_recovery_point_id: str | None
    resource_arn: str
    resource_type: str
    resource_name: str | None
    source_job_id: str | None
    iam_role_arn: str | None
    status: RecoveryPointStatus
    status_message: str | None
    storage_class: str
    creation_date: datetime
    initiation_date: datetime | None
    completion_date: datetime | None
    backup_size_in_bytes: int | None
    lifecycle: Mapping[str, Any] | None
    move_to_cold_at: datetime | None
    delete_at: datetime | None
    is_encrypted: bool
    encryption_key_arn: str | None
    encryption_key_type: str | None
    parent_recovery_point_arn: str | None
    is_parent: bool
    composite_member_identifier: str | None
    last_restore_time: datetime | None
    backup_plan_id: str | None
    created_by: Mapping[str, Any] | None

    @property
    def calculated_lifecycle(self) -> lifecycle_rules.CalculatedLifecycle:
        return lifecycle_rules.CalculatedLifecycle(self.move_to_cold_at, self.delete_at)


@dataclass(frozen=True)
class CopyJob(_Row):
    """One copy job (a ``copy_jobs`` row): StartCopyJob's, or a plan rule's CopyAction
    after a backup of that rule (``created_by_backup_job_id``). ``account_id`` and
    ``region`` are the source's; the destination may be in another region or account."""

    _enums: ClassVar[Mapping[str, type[StrEnum]]] = {"state": CopyJobState}
    kind: ClassVar[Kind] = Kind.COPY

    copy_job_id: str
    account_id: str
    region: str
    source_backup_vault_arn: str
    source_recovery_point_arn: str
    destination_backup_vault_arn: str
    destination_vault_type: str | None
    destination_recovery_point_arn: str
    destination_encryption_key_arn: str | None
    destination_recovery_point_lifecycle: Mapping[str, Any] | None
    resource_arn: str
    resource_type: str
    resource_name: str | None
    state: CopyJobState
    status_message: str | None
    message_category: str | None
    creation_date: datetime
    start_date: datetime | None
    completion_date: datetime | None
    percent_done: float | None
    bytes_transferred: int | None
    backup_size_in_bytes: int | None
    iam_role_arn: str | None
    idempotency_token: str | None
    created_by: Mapping[str, Any] | None
    created_by_backup_job_id: str | None
    composite_member_identifier: str | None
    is_parent: bool
    parent_job_id: str | None
    worker_label: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    attempts: int
    max_attempts: int

    @property
    def id(self) -> str:
        return self.copy_job_id

    @property
    def complete_by(self) -> datetime | None:
        return None  # copy jobs have no completion window

    @property
    def cross_account(self) -> bool:
        """The destination vault belongs to another account (its ARN says which)."""
        return self.destination_backup_vault_arn.split(":")[4] != self.account_id


Job = BackupJob | RestoreJob | CopyJob

DEFAULT_MAX_ATTEMPTS = 3
"""Runs a job gets before a lost worker fails it (the column's server default too)."""


@dataclass(frozen=True)
class Target:
    """Where a new backup job reads from and writes to, as it stands in the catalog."""

    resource_arn: str
    resource_type: str
    resource_name: str | None
    worker_label: str | None
    vault_name: str
    vault_arn: str
    vault_type: str | None  # None: the vault does not exist (a scheduled job fails at once)
    encryption_key_arn: str | None
    is_parent: bool = False  # a group (Composite): the job fans out to one child per member


@dataclass(frozen=True)
class PlanRef:
    """The plan rule a scheduled job comes from (CreatedBy)."""

    plan_id: str
    plan_arn: str
    version_id: str
    rule_id: str
    created_by: Mapping[str, Any]


def new_backup_job(
    *,
    job_id: str,
    account_id: str,
    region: str,
    target: Target,
    now: datetime,
    deadlines: windows.JobDeadlines,
    recovery_point_arn: str,
    iam_role_arn: str | None,
    lifecycle: Mapping[str, Any] | None,
    recovery_point_tags: Mapping[str, str] | None,
    backup_options: Mapping[str, str] | None = None,
    idempotency_token: str | None = None,
    plan: PlanRef | None = None,
    vault_missing: bool = False,
) -> BackupJob:
    """A backup job as it is queued: CREATED, with its StartBy and the RecoveryPointArn it
    will produce; FAILED at once (MISSING_VAULT) when ``vault_missing``."""
    return BackupJob(
        job_id=job_id,
        account_id=account_id,
        region=region,
        backup_vault_name=target.vault_name,
        backup_vault_arn=target.vault_arn,
        vault_type=target.vault_type,
        resource_arn=target.resource_arn,
        resource_type=target.resource_type,
        resource_name=target.resource_name,
        state=BackupJobState.FAILED if vault_missing else BackupJobState.CREATED,
        status_message=f"backup vault {target.vault_name} does not exist"
        if vault_missing
        else None,
        message_category="MISSING_VAULT" if vault_missing else None,
        creation_date=now,
        initiation_date=now,
        start_date=None,
        completion_date=now if vault_missing else None,
        start_by=deadlines.start_by,
        expected_completion_date=deadlines.complete_by,
        percent_done=0.0,
        bytes_transferred=0,
        backup_size_in_bytes=None,
        iam_role_arn=iam_role_arn,
        idempotency_token=idempotency_token,
        backup_type="FULL",
        backup_plan_id=None if plan is None else plan.plan_id,
        backup_plan_arn=None if plan is None else plan.plan_arn,
        backup_plan_version=None if plan is None else plan.version_id,
        backup_rule_id=None if plan is None else plan.rule_id,
        created_by=None if plan is None else plan.created_by,
        lifecycle=lifecycle,
        recovery_point_tags=recovery_point_tags,
        backup_options=backup_options,
        recovery_point_arn=recovery_point_arn,
        encryption_key_arn=target.encryption_key_arn,
        is_encrypted=True,
        is_parent=target.is_parent,
        parent_job_id=None,
        worker_label=target.worker_label,
        lease_owner=None,
        lease_expires_at=None,
        heartbeat_at=None,
        attempts=0,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
    )


@dataclass(frozen=True)
class CopySource:
    """What a copy job copies and where to: the source point as the catalog has it and
    the destination vault's ARN, with its type and key when the caller may know them
    (None for another account's vault: whether it exists is the worker's to find out)."""

    point: RecoveryPoint
    destination_vault_arn: str
    destination_vault_type: str | None
    destination_key_arn: str | None


def new_copy_job(
    *,
    job_id: str,
    source: CopySource,
    now: datetime,
    destination_recovery_point_arn: str,
    iam_role_arn: str | None,
    lifecycle: Mapping[str, Any] | None,
    idempotency_token: str | None = None,
    created_by: Mapping[str, Any] | None = None,
    created_by_backup_job_id: str | None = None,
) -> CopyJob:
    """A copy job as it is queued (CREATED), by StartCopyJob and by a rule's CopyAction.

    Without a ``lifecycle`` the copy keeps its source point's (AWS: copies retain their
    source's retention unless the copy overrides it)."""
    rp = source.point
    return CopyJob(
        copy_job_id=job_id,
        account_id=rp.account_id,
        region=rp.region,
        source_backup_vault_arn=rp.backup_vault_arn,
        source_recovery_point_arn=rp.arn,
        destination_backup_vault_arn=source.destination_vault_arn,
        destination_vault_type=source.destination_vault_type,
        destination_recovery_point_arn=destination_recovery_point_arn,
        destination_encryption_key_arn=source.destination_key_arn,
        destination_recovery_point_lifecycle=lifecycle if lifecycle else rp.lifecycle,
        resource_arn=rp.resource_arn,
        resource_type=rp.resource_type,
        resource_name=rp.resource_name,
        state=CopyJobState.CREATED,
        status_message=None,
        message_category=None,
        creation_date=now,
        start_date=None,
        completion_date=None,
        percent_done=0.0,
        bytes_transferred=0,
        backup_size_in_bytes=rp.backup_size_in_bytes,
        iam_role_arn=iam_role_arn,
        idempotency_token=idempotency_token,
        created_by=created_by,
        created_by_backup_job_id=created_by_backup_job_id,
        composite_member_identifier=rp.composite_member_identifier,
        is_parent=False,
        parent_job_id=None,
        worker_label=None,
        lease_owner=None,
        lease_expires_at=None,
        heartbeat_at=None,
        attempts=0,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
    )


def copied_point_type(source_type: str | None) -> str | None:
    """The RecoveryPointType of a copy: a copy of a CONTINUOUS point is a SNAPSHOT (AWS:
    "the copied recovery point becomes a snapshot (periodic) backup"); None: the source
    has no type recorded.

    >>> copied_point_type("CONTINUOUS"), copied_point_type("SNAPSHOT")
    ('SNAPSHOT', 'SNAPSHOT')
    """
    if source_type is None:
        return None
    return "SNAPSHOT" if source_type == "CONTINUOUS" else source_type
