"""``snowvault copy``: start, list and describe copy jobs (a recovery point into another
vault: another region of this server, or another account's vault that allows it).

A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

from typing import Any

import click

from snowvault.control.model import jobs as job_rules
from snowvault.interfaces.cli import backup_cmd, job_cmd, render
from snowvault.interfaces.cli.client import Api, json_option, with_api

COPY = job_cmd.JobKind("copy", "CopyJobId", "State", "describe_copy_job")
STATES = [str(s) for s in job_rules.CopyJobState]

COLUMNS: list[render.Column] = [
    ("JOB ID", lambda j: j.get("CopyJobId")),
    ("STATE", lambda j: j.get("State")),
    ("SIZE", lambda j: render.size(int(j.get("BackupSizeInBytes") or 0))),
    ("FROM", lambda j: job_cmd.vault_of({"BackupVaultArn": j.get("SourceBackupVaultArn")})),
    ("TO", lambda j: j.get("DestinationBackupVaultArn")),
    ("RESOURCE", lambda j: j.get("ResourceArn")),
    ("CREATED", lambda j: _when(j.get("CreationDate"))),
]


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


def start_params(
    recovery_point_arn: str,
    source_vault: str,
    destination_vault_arn: str,
    delete_after_days: int | None,
    role: str | None,
) -> dict[str, Any]:
    """StartCopyJob parameters.

    >>> start_params("arn:aws:backup:r:123456789012:recovery-point:x", "main",
    ...     "arn:aws:backup:r2:123456789012:backup-vault:dr", 7, None)["Lifecycle"]
    {'DeleteAfterDays': 7}
    """
    params: dict[str, Any] = {
        "RecoveryPointArn": recovery_point_arn,
        "SourceBackupVaultName": source_vault,
        "DestinationBackupVaultArn": destination_vault_arn,
        "IamRoleArn": role or backup_cmd.default_role(recovery_point_arn),
    }
    if delete_after_days is not None:
        params["Lifecycle"] = {"DeleteAfterDays": delete_after_days}
    return params


def describe_job(api: Api, job_id: str) -> dict[str, Any]:
    return dict(api.call("describe_copy_job", CopyJobId=job_id)["CopyJob"])


@click.group()
def copy() -> None:
    """Copies of recovery points into other vaults, regions or accounts."""


@copy.command()
@click.option("--recovery-point", "recovery_point_arn", required=True, metavar="ARN")
@click.option("--from-vault", "source_vault", required=True, help="The point's vault (name).")
@click.option("--to-vault", "destination", required=True, metavar="ARN", help="Destination vault.")
@click.option("--delete-after-days", type=click.IntRange(min=1), help="The copy's retention.")
@click.option("--iam-role-arn", help="Default: arn:aws:iam::ACCOUNT:role/snowvault.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; fail if it fails.")
@json_option
@with_api
def start(
    api: Api,
    recovery_point_arn: str,
    source_vault: str,
    destination: str,
    delete_after_days: int | None,
    iam_role_arn: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Copy a recovery point into the vault with ARN --to-vault."""
    params = start_params(
        recovery_point_arn, source_vault, destination, delete_after_days, iam_role_arn
    )
    doc = api.call("start_copy_job", **params)
    job_id = str(doc["CopyJobId"])
    if not wait:
        render.result(as_json, doc, f"started copy job {job_id}")
        return
    final = job_cmd.poll(lambda: describe_job(api, job_id), COPY, lambda job: None)
    job_cmd.finish(COPY, final, as_json)


@copy.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--to-vault", "destination", metavar="ARN", help="Only copies into this vault.")
@click.option("--resource", "resource_arn", metavar="ARN", help="Only copies of this resource.")
@json_option
@with_api
def list_(
    api: Api,
    state: str | None,
    destination: str | None,
    resource_arn: str | None,
    as_json: bool,
) -> None:
    """List copy jobs, newest first."""
    filters = {
        "ByState": state,
        "ByDestinationVaultArn": destination,
        "ByResourceArn": resource_arn,
    }
    params = {k: v for k, v in filters.items() if v}
    render.table(as_json, api.paginate("list_copy_jobs", "CopyJobs", **params), COLUMNS)


@copy.command()
@click.argument("job_id")
@json_option
@with_api
def describe(api: Api, job_id: str, as_json: bool) -> None:
    """Show one copy job."""
    doc = describe_job(api, job_id)
    text = "\n".join(f"{title.lower():9} {get(doc) or ''}" for title, get in COLUMNS)
    if doc.get("DestinationRecoveryPointArn"):
        text += f"\ncopy      {doc['DestinationRecoveryPointArn']}"
    if doc.get("StatusMessage"):
        text += f"\nmessage   {doc['StatusMessage']}"
    render.result(as_json, doc, text)
