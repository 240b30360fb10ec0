"""model/jobs: states match botocore's enums, transitions as data, the one job constructor."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import botocore.session
import pytest

from snowvault.control.catalog import tables
from snowvault.control.model import jobs, windows

T0 = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def service_model() -> object:
    return botocore.session.get_session().get_service_model("backup")


@pytest.mark.parametrize(
    ("shape", "enum"),
    [
        ("BackupJobState", jobs.BackupJobState),
        ("RestoreJobStatus", jobs.RestoreJobStatus),
        ("CopyJobState", jobs.CopyJobState),
        ("RecoveryPointStatus", jobs.RecoveryPointStatus),
    ],
)
def test_states_are_botocores_enum_in_its_order(
    service_model: object, shape: str, enum: type[StrEnum]
) -> None:
    assert [e.value for e in enum] == service_model.shape_for(shape).enum  # type: ignore[attr-defined]


def test_every_state_of_a_machine_is_reachable_from_a_created_state() -> None:
    for machine in jobs.MACHINES.values():
        seen = set(machine.created)
        todo = list(seen)
        while todo:
            for nxt in machine.transitions.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(machine.states), machine.kind
        for source, targets in machine.transitions.items():
            assert source in machine.states and targets <= set(machine.states)


@pytest.mark.parametrize(
    ("kind", "src", "dst", "allowed"),
    [
        ("backup", "CREATED", "RUNNING", True),
        ("backup", "RUNNING", "ABORTING", True),
        ("backup", "ABORTING", "COMPLETED", True),
        ("backup", "RUNNING", "PENDING", True),  # handed back / lost worker with attempts left
        ("backup", "COMPLETED", "RUNNING", False),
        ("backup", "EXPIRED", "PENDING", False),
        ("backup", "ABORTING", "PENDING", False),
        ("backup", "CREATED", "COMPLETED", False),
        ("restore", "PENDING", "RUNNING", True),
        ("restore", "RUNNING", "COMPLETED", True),
        ("restore", "PENDING", "ABORTED", False),
        ("restore", "FAILED", "PENDING", False),
    ],
)
def test_can_transition(kind: str, src: str, dst: str, allowed: bool) -> None:
    assert jobs.can_transition(kind, src, dst) is allowed


def test_final_and_active_states() -> None:
    assert jobs.BACKUP.final == {"ABORTED", "COMPLETED", "FAILED", "EXPIRED", "PARTIAL"}
    assert jobs.RESTORE.final == {"ABORTED", "COMPLETED", "FAILED"}
    assert jobs.BACKUP.active == ("RUNNING", "ABORTING")
    assert jobs.RESTORE.active == ("RUNNING",)


def test_stop_target() -> None:
    assert jobs.stop_target("CREATED") == "ABORTED"
    assert jobs.stop_target("PENDING") == "ABORTED"
    assert jobs.stop_target("RUNNING") == "ABORTING"
    for state in ("ABORTING", *jobs.BACKUP.final):
        assert jobs.stop_target(state) is None


@pytest.mark.parametrize(
    ("record", "table"),
    [
        (jobs.BackupJob, tables.backup_jobs),
        (jobs.RestoreJob, tables.restore_jobs),
        (jobs.CopyJob, tables.copy_jobs),
        (jobs.RecoveryPoint, tables.recovery_points),
    ],
)
def test_a_record_has_exactly_its_tables_columns(record: type, table: object) -> None:
    names = {f.name for f in dataclasses.fields(record)}
    assert names == set(table.c.keys())  # type: ignore[attr-defined]


def _target(vault_type: str | None = "BACKUP_VAULT") -> jobs.Target:
    return jobs.Target(
        resource_arn="arn:aws:snowvault:us-east-1:123456789012:resource:r1",
        resource_type="Directory",
        resource_name="r1",
        worker_label=None,
        vault_name="v",
        vault_arn="arn:aws:backup:us-east-1:123456789012:backup-vault:v",
        vault_type=vault_type,
        encryption_key_arn=None,
    )


def _new(**kw: object) -> jobs.BackupJob:
    due = windows.deadlines(T0, windows.validate_windows(60, 120))
    args: dict[str, object] = dict(
        job_id="j1",
        account_id="123456789012",
        region="us-east-1",
        target=_target(),
        now=T0,
        deadlines=due,
        recovery_point_arn="arn:aws:backup:us-east-1:123456789012:recovery-point:p",
        iam_role_arn=None,
        lifecycle=None,
        recovery_point_tags={},
    )
    args.update(kw)
    return jobs.new_backup_job(**args)  # type: ignore[arg-type]


def test_new_backup_job_is_created_with_its_windows_and_round_trips_as_a_row() -> None:
    job = _new()
    assert job.state is jobs.BackupJobState.CREATED
    assert job.start_by == T0 + timedelta(minutes=60)
    assert job.complete_by == T0 + timedelta(minutes=120)
    assert (job.attempts, job.max_attempts, job.backup_type) == (0, 3, "FULL")
    assert jobs.BackupJob.from_row(job.as_row()) == job


def test_new_backup_job_into_a_missing_vault_fails_at_once() -> None:
    job = _new(target=_target(vault_type=None), vault_missing=True)
    assert (job.state, job.message_category, job.completion_date) == ("FAILED", "MISSING_VAULT", T0)
    assert job.status_message == "backup vault v does not exist"


def test_fate_follows_the_window_rule_at_the_boundary_second() -> None:
    job = _new()
    start_by = job.start_by
    assert start_by is not None
    second = timedelta(seconds=1)
    assert jobs.fate(job, start_by - second) is windows.JobFate.WAIT
    assert jobs.fate(job, start_by) is windows.JobFate.EXPIRE
    running = dataclasses.replace(job, state=jobs.BackupJobState.RUNNING)
    deadline = running.complete_by
    assert deadline is not None
    assert jobs.fate(running, deadline - second) is windows.JobFate.CONTINUE
    assert jobs.fate(running, deadline) is windows.JobFate.ABORT


@pytest.mark.parametrize(
    ("partial", "unreadable", "expected"),
    [
        (False, 0, ("COMPLETED", None, "SUCCESS", "COMPLETED")),
        (True, 3, ("PARTIAL", "3 entries could not be read", "PARTIAL", "PARTIAL")),
        (True, 0, ("PARTIAL", None, "PARTIAL", "PARTIAL")),
        (False, 1, ("COMPLETED", "1 entries could not be read", "SUCCESS", "COMPLETED")),
    ],
)
def test_backup_outcome_chooses_partial_or_completed(
    partial: bool, unreadable: int, expected: tuple[str, str | None, str, str]
) -> None:
    outcome = jobs.backup_outcome(partial=partial, unreadable=unreadable)
    got = (outcome.state, outcome.status_message, outcome.message_category, outcome.point_status)
    assert got == expected
    assert jobs.can_transition(jobs.Kind.BACKUP, "RUNNING", outcome.state)
