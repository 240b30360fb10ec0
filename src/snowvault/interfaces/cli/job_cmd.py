"""``snowvault job``: list, describe and stop backup and restore jobs; wait for one to end.

:func:`wait` polls a job until a terminal state, drawing a Rich bar (PercentDone,
BytesTransferred) for people; backup_cmd and restore_cmd use it for ``--wait``.
A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from snowvault.control.model import jobs as job_rules
from snowvault.interfaces.cli import errors, render, resource_cmd
from snowvault.interfaces.cli.client import (
    Api,
    ApiNotFound,
    JobUnsuccessful,
    json_option,
    with_api,
)

BACKUP_STATES = [str(s) for s in job_rules.BackupJobState]
RESTORE_STATES = [str(s) for s in job_rules.RestoreJobStatus]
TERMINAL = {str(s) for s in job_rules.BACKUP.final | job_rules.RESTORE.final}
UNSUCCESSFUL = TERMINAL - {"COMPLETED", "PARTIAL"}


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is read through the API."""

    name: str
    id_key: str
    state_key: str
    describe: str


BACKUP = JobKind("backup", "BackupJobId", "State", "describe_backup_job")
RESTORE = JobKind("restore", "RestoreJobId", "Status", "describe_restore_job")

COLUMNS: list[render.Column] = [
    ("TYPE", lambda j: j.get("JobType")),
    ("JOB ID", lambda j: j.get("BackupJobId") or j.get("RestoreJobId")),
    ("STATE", lambda j: j.get("State") or j.get("Status")),
    ("DONE", lambda j: percent(j.get("PercentDone"))),
    ("SIZE", lambda j: render.size(size_of(j))),
    ("VAULT", lambda j: vault_of(j)),
    ("RESOURCE", lambda j: j.get("ResourceArn") or j.get("SourceResourceArn")),
    ("TARGET", lambda j: j.get("CreatedResourceArn")),
    ("CREATED", lambda j: _when(j.get("CreationDate"))),
]


def vault_of(job: dict[str, Any]) -> str:
    """A job's vault name: BackupVaultName, or the end of BackupVaultArn (restore jobs).

    >>> vault_of({"BackupVaultArn": "arn:aws:backup:r:1:backup-vault:main"})
    'main'
    """
    if job.get("BackupVaultName"):
        return str(job["BackupVaultName"])
    arn = str(job.get("BackupVaultArn") or "")
    return arn.rsplit(":backup-vault:", 1)[1] if ":backup-vault:" in arn else ""


def size_of(job: dict[str, Any]) -> int:
    """The size of what the job backed up or restored (BackupSizeInBytes); the bytes it
    transferred only when the API gives no size (an incremental backup transfers only
    what changed, so BytesTransferred is not its size)."""
    if isinstance(job.get("BackupSizeInBytes"), int):
        return int(job["BackupSizeInBytes"])
    return transferred(job)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


def percent(value: Any) -> str:
    """AWS sends PercentDone as a string (``"42.0"``) or a number; show ``42%``."""
    try:
        return f"{float(value):.0f}%"
    except (TypeError, ValueError):
        return ""


def transferred(job: dict[str, Any]) -> int:
    """Bytes moved so far: BytesTransferred for backups, BackupSizeInBytes as fallback."""
    for key in ("BytesTransferred", "BackupSizeInBytes"):
        if isinstance(job.get(key), int):
            return int(job[key])
    return 0


def state_of(kind: JobKind, job: dict[str, Any]) -> str:
    return str(job.get(kind.state_key) or "")


def check_outcome(kind: JobKind, job: dict[str, Any]) -> None:
    """Raise :class:`JobUnsuccessful` for a FAILED, ABORTED or EXPIRED job."""
    state = state_of(kind, job)
    if state in UNSUCCESSFUL:
        raise JobUnsuccessful(
            kind=kind.name,
            job_id=job.get(kind.id_key, "?"),
            state=state,
            reason=errors.in_flag_terms(str(job.get("StatusMessage") or "no message")),
        )


def poll(
    describe: Callable[[], dict[str, Any]],
    kind: JobKind,
    on_update: Callable[[dict[str, Any]], None],
    *,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Call ``describe`` until the job is terminal, reporting each answer; return the last."""
    while True:
        job = describe()
        on_update(job)
        if state_of(kind, job) in TERMINAL:
            return job
        sleep(interval)
        interval = min(interval * 1.5, 5.0)


def wait(api: Api, kind: JobKind, job_id: str, *, as_json: bool) -> dict[str, Any]:
    """Wait for a job, with a progress bar on a terminal (none with ``--json``)."""

    def describe() -> dict[str, Any]:
        return api.call(kind.describe, **{kind.id_key: job_id})

    from rich.console import Console  # deferred: only a waiting terminal draws a bar
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    console = Console(stderr=True)
    if as_json or not console.is_terminal:
        return poll(describe, kind, lambda job: None)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[moved]}"),
        console=console,
        transient=True,
    )
    task = bar.add_task(f"{kind.name} {job_id[:8]}", total=100.0, moved="")

    def update(job: dict[str, Any]) -> None:
        done = _percent_value(job.get("PercentDone"))
        bar.update(
            task,
            completed=done,
            description=f"{kind.name} {state_of(kind, job)}",
            moved=render.size(transferred(job)),
        )

    with bar:
        return poll(describe, kind, update)


def _percent_value(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def finish(kind: JobKind, job: dict[str, Any], as_json: bool) -> None:
    """Print a waited-for job's final state, then fail if it did not succeed."""
    state = state_of(kind, job)
    text = f"{kind.name} job {job.get(kind.id_key)} {state}"
    if state == "COMPLETED" and size_of(job):
        text += f" ({render.size(size_of(job))})"
    if job.get("StatusMessage") and state != "COMPLETED":
        text += f": {errors.in_flag_terms(str(job['StatusMessage']))}"
    render.result(as_json, job, text)
    if state == "PARTIAL":
        render.warn(as_json, f"{kind.name} job {job.get(kind.id_key)} completed only partly")
    check_outcome(kind, job)


def backup_filters(
    state: str | None, vault: str | None, resource_arn: str | None
) -> dict[str, str]:
    """ListBackupJobs parameters for the given filters."""
    params = {"ByState": state, "ByBackupVaultName": vault, "ByResourceArn": resource_arn}
    return {k: v for k, v in params.items() if v}


def list_jobs(
    api: Api, job_type: str | None, state: str | None, vault: str | None, resource: str | None
) -> list[dict[str, Any]]:
    """Backup and/or restore jobs, newest first, each with a ``JobType``."""
    rows: list[dict[str, Any]] = []
    if job_type in (None, "backup"):
        params = backup_filters(state, vault, resource)
        rows += [
            {"JobType": "backup", **j}
            for j in api.paginate("list_backup_jobs", "BackupJobs", **params)
        ]
    if job_type in (None, "restore") and not vault:
        params = {"ByStatus": state} if state in RESTORE_STATES else {}
        if state and not params:
            return rows
        found = api.paginate("list_restore_jobs", "RestoreJobs", **params)
        if resource:
            keys = ("ResourceArn", "SourceResourceArn", "CreatedResourceArn")
            found = [j for j in found if resource in (j.get(k) for k in keys)]
        rows += [{"JobType": "restore", **j} for j in found]
    rows.sort(key=lambda j: str(j.get("CreationDate") or ""), reverse=True)
    return rows


@click.group()
def job() -> None:
    """Backup and restore jobs."""


@job.command("list")
@click.option("--state", type=click.Choice(BACKUP_STATES), help="Only jobs in this state.")
@click.option("--vault", help="Only backup jobs into this vault.")
@click.option("--resource", "resource_arn", metavar="ARN|NAME", help="Only jobs of this resource.")
@click.option("--type", "job_type", type=click.Choice(["backup", "restore"]))
@json_option
@with_api
def list_(
    api: Api,
    state: str | None,
    vault: str | None,
    resource_arn: str | None,
    job_type: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    if resource_arn:
        resource_arn = resource_cmd.resolve(api, resource_arn)
    render.table(as_json, list_jobs(api, job_type, state, vault, resource_arn), COLUMNS)


def describe_any(api: Api, job_id: str) -> tuple[JobKind, dict[str, Any]]:
    """A job by id, whether it is a backup or a restore job."""
    try:
        return BACKUP, api.call(BACKUP.describe, BackupJobId=job_id)
    except ApiNotFound:
        pass
    try:
        return RESTORE, api.call(RESTORE.describe, RestoreJobId=job_id)
    except ApiNotFound as exc:
        detail = f"no backup or restore job {job_id}"
        code = exc.fields.get("code", "ResourceNotFoundException")
        raise ApiNotFound(code=code, detail=detail) from None


@job.command()
@click.argument("job_id")
@json_option
@with_api
def describe(api: Api, job_id: str, as_json: bool) -> None:
    """Show one backup or restore job."""
    kind, doc = describe_any(api, job_id)
    doc = {"JobType": kind.name, **doc}
    text = "\n".join(f"{title.lower():9} {get(doc) or ''}" for title, get in COLUMNS)
    if doc.get("StatusMessage"):
        text += f"\nmessage   {doc['StatusMessage']}"
    render.result(as_json, doc, text)


@job.command()
@click.argument("job_id")
@json_option
@with_api
def stop(api: Api, job_id: str, as_json: bool) -> None:
    """Ask a running backup job to stop."""
    api.call("stop_backup_job", BackupJobId=job_id)
    render.result(as_json, {"BackupJobId": job_id, "StopRequested": True}, f"stopping {job_id}")
