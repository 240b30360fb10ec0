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

The catalog turns rows into :class:`BackupJob`, :class:`RestoreJob` and
:class:`RecoveryPoint` (``from_row``: the fields are the table's columns);
:func:`new_backup_job` is the one constructor of a backup job, used by StartBackupJob
and by the scheduler alike.

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
    COPY = "copy"  # not run yet: its states and transitions come with copy jobs


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

MACHINES: Mapping[Kind, StateMachine] = {m.kind: m for m in (BACKUP, RESTORE)}


def can_transition(kind: Kind | str, from_state: str, to_state: str) -> bool:
    """May a job of ``kind`` move from ``from_state`` to ``to_state``?"""
    return MACHINES[Kind(kind)].can(from_state, to_state)


def fate(job: Job, now: datetime) -> windows.JobFate | None:
    """The window rule (:func:`windows.job_fate`) for a stored job; None: it has none.

    The catalog's SQL uses the same boundaries: at exactly StartBy a waiting job has
    expired, at exactly the completion deadline a running one is aborted."""
    if isinstance(job, RestoreJob):
        return None
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


def backup_outcome(*, partial: bool, unreadable: int) -> BackupOutcome:
    """PARTIAL when the backup left something out (``partial``), COMPLETED otherwise;
    ``unreadable`` entries are named in the status message either way.

    >>> backup_outcome(partial=True, unreadable=2).state
    <BackupJobState.PARTIAL: 'PARTIAL'>
    >>> backup_outcome(partial=False, unreadable=0).message_category
    'SUCCESS'
    """
    message = f"{unreadable} entries could not be read" if unreadable else None
    if partial:
        return BackupOutcome(
            BackupJobState.PARTIAL, message, "PARTIAL", RecoveryPointStatus.PARTIAL
        )
    return BackupOutcome(
        BackupJobState.COMPLETED, message, "SUCCESS", RecoveryPointStatus.COMPLETED
    )


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


Job = BackupJob | RestoreJob

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
        is_parent=False,
        parent_job_id=None,
        worker_label=target.worker_label,
        lease_owner=None,
        lease_expires_at=None,
        heartbeat_at=None,
        attempts=0,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
    )
