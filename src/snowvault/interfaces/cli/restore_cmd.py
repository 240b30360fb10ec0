"""``snowvault restore start``: restore a recovery point (or some items of it).

``--to PATH`` / ``--item`` / ``--overwrite`` are the Directory type's Metadata
(``targetPath``, ``items`` as a JSON list, ``overwrite``); ``--metadata KEY=VALUE`` passes
any type's keys as given (``targetDirectory`` and ``pointInTime`` for PostgreSQL,
``targetDsn``, ``targetBucket`` ...: GetRecoveryPointRestoreMetadata lists a point's keys
and defaults, ``snowvault recovery-point restore-metadata`` shows them).
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
    recovery_point_arn: str,
    target: str | None,
    items: Sequence[str],
    overwrite: bool,
    role: str | None,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """StartRestoreJob parameters.

    >>> restore_params("arn:aws:backup:r:123456789012:recovery-point:x", "/t", ["/a"], True,
    ...     None)["Metadata"]
    {'targetPath': '/t', 'items': '["/a"]', 'overwrite': 'true'}
    >>> restore_params("arn:aws:backup:r:123456789012:recovery-point:x", None, [], False,
    ...     None, ["targetDirectory=/srv/pg", "pointInTime=2026-12-07T03:00:00Z"])["Metadata"]
    {'targetDirectory': '/srv/pg', 'pointInTime': '2026-12-07T03:00:00Z'}
    """
    metadata = {} if target is None else {"targetPath": target}
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--metadata")
        metadata[key] = value
    if not metadata:
        raise click.UsageError("give --to PATH (a directory) or --metadata KEY=VALUE")
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
@click.option("--to", "target", metavar="PATH", help="Directory to restore into (targetPath).")
@click.option(
    "--metadata",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="A restore Metadata key of the point's type (repeatable), e.g. "
    "targetDirectory=/srv/pg, pointInTime=2026-12-07T03:00:00Z, targetDsn=...",
)
@click.option("--item", "items", multiple=True, metavar="PATH", help="Only this path (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace files that exist at the target.")
@click.option("--iam-role-arn", help="Default: arn:aws:iam::ACCOUNT:role/snowvault.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; fail if it fails.")
@json_option
@with_api
def start(
    api: Api,
    recovery_point_arn: str,
    target: str | None,
    extra: tuple[str, ...],
    items: tuple[str, ...],
    overwrite: bool,
    iam_role_arn: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Restore a recovery point: a directory to PATH on the server's host (--to), any
    type by its Metadata keys (--metadata)."""
    params = restore_params(recovery_point_arn, target, items, overwrite, iam_role_arn, extra)
    doc = api.call("start_restore_job", **params)
    job_id = str(doc["RestoreJobId"])
    if not wait:
        render.result(as_json, doc, f"started restore job {job_id}")
        return
    final = job_cmd.wait(api, job_cmd.RESTORE, job_id, as_json=as_json)
    job_cmd.finish(job_cmd.RESTORE, final, as_json)
