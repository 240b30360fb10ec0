"""``snowvault backup start``: start an on-demand backup job, optionally wait for it.

A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

from typing import Any

import click

from snowvault.core import arn as arns
from snowvault.interfaces.cli import job_cmd, render, resource_cmd
from snowvault.interfaces.cli.client import Api, json_option, with_api

DEFAULT_ROLE = "arn:aws:iam::{account}:role/snowvault"


def default_role(resource_arn: str) -> str:
    """The default service role, in the account of ``resource_arn`` (any ARN).

    >>> default_role("arn:aws:snowvault:us-east-1:123456789012:resource:x")
    'arn:aws:iam::123456789012:role/snowvault'
    """
    return DEFAULT_ROLE.format(account=arns.Arn.parse(resource_arn).account)


def start_params(
    resource_arn: str, vault: str, role: str, delete_after_days: int | None
) -> dict[str, Any]:
    """StartBackupJob parameters."""
    params: dict[str, Any] = {
        "BackupVaultName": vault,
        "ResourceArn": resource_arn,
        "IamRoleArn": role,
    }
    if delete_after_days is not None:
        params["Lifecycle"] = {"DeleteAfterDays": delete_after_days}
    return params


@click.group()
def backup() -> None:
    """On-demand backups."""


@backup.command()
@click.option("--resource", "resource_ref", required=True, metavar="ARN|NAME")
@click.option("--vault", required=True, metavar="NAME")
@click.option("--iam-role-arn", help="Default: arn:aws:iam::ACCOUNT:role/snowvault.")
@click.option("--delete-after-days", type=click.IntRange(min=1))
@click.option("--wait", is_flag=True, help="Wait for the job to end; fail if it fails.")
@json_option
@with_api
def start(
    api: Api,
    resource_ref: str,
    vault: str,
    iam_role_arn: str | None,
    delete_after_days: int | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Back up a resource into a vault."""
    resource_arn = resource_cmd.resolve(api, resource_ref)
    role = iam_role_arn or default_role(resource_arn)
    doc = api.call("start_backup_job", **start_params(resource_arn, vault, role, delete_after_days))
    job_id = str(doc["BackupJobId"])
    if not wait:
        render.result(as_json, doc, f"started backup job {job_id}")
        return
    final = job_cmd.wait(api, job_cmd.BACKUP, job_id, as_json=as_json)
    job_cmd.finish(job_cmd.BACKUP, final, as_json)
