"""``snowvault restore start``: restore a recovery point (or some items of it) to a path.

The restore metadata follows the server's conventions: ``targetPath``,
``items`` (a JSON list of paths inside the recovery point) and ``overwrite``.
A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from snowvault.interfaces.cli import backup_cmd, job_cmd, render
from snowvault.interfaces.cli.client import Api, json_option, with_api


def restore_params(
    recovery_point_arn: str, target: str, items: Sequence[str], overwrite: bool, role: str | None
) -> dict[str, Any]:
    """StartRestoreJob parameters.

    >>> restore_params("arn:aws:backup:r:123456789012:recovery-point:x", "/t", ["/a"], True,
    ...     None)["Metadata"]
    {'targetPath': '/t', 'items': '["/a"]', 'overwrite': 'true'}
    """
    metadata = {"targetPath": target}
    if items:
        metadata["items"] = json.dumps(list(items))
    if overwrite:
        metadata["overwrite"] = "true"
    return {
        "RecoveryPointArn": recovery_point_arn,
        "Metadata": metadata,
        "IamRoleArn": role or backup_cmd.default_role(recovery_point_arn),
    }


@click.group()
def restore() -> None:
    """Restores from recovery points."""


@restore.command()
@click.option("--recovery-point", "recovery_point_arn", required=True, metavar="ARN")
@click.option("--to", "target", required=True, metavar="PATH", help="Directory to restore into.")
@click.option("--item", "items", multiple=True, metavar="PATH", help="Only this path (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace files that exist at the target.")
@click.option("--iam-role-arn", help="Default: arn:aws:iam::ACCOUNT:role/snowvault.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; fail if it fails.")
@json_option
@with_api
def start(
    api: Api,
    recovery_point_arn: str,
    target: str,
    items: tuple[str, ...],
    overwrite: bool,
    iam_role_arn: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Restore a recovery point to PATH on the server's host."""
    params = restore_params(recovery_point_arn, target, items, overwrite, iam_role_arn)
    doc = api.call("start_restore_job", **params)
    job_id = str(doc["RestoreJobId"])
    if not wait:
        render.result(as_json, doc, f"started restore job {job_id}")
        return
    final = job_cmd.wait(api, job_cmd.RESTORE, job_id, as_json=as_json)
    job_cmd.finish(job_cmd.RESTORE, final, as_json)
