"""``snowvault recovery-point``: list, describe, delete and browse recovery points.

A recovery point is named by its ARN or by a unique suffix of it (the id), within
``--vault`` when given, else in any vault (found by listing: see :func:`locate`).
Browsing uses the extension action ListRecoveryPointContents.
A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from snowvault.core.errors import InvalidInput, NotFound
from snowvault.interfaces.cli import render, resource_cmd
from snowvault.interfaces.cli.client import Api, json_option, with_api

COLUMNS: list[render.Column] = [
    ("ARN", lambda r: r.get("RecoveryPointArn")),
    ("STATUS", lambda r: r.get("Status")),
    ("SIZE", lambda r: render.size(size_of(r))),
    ("VAULT", lambda r: r.get("BackupVaultName")),
    ("RESOURCE", lambda r: r.get("ResourceName") or r.get("ResourceArn")),
    ("CREATED", lambda r: _when(r.get("CreationDate"))),
]

ENTRY_COLUMNS: list[render.Column] = [
    ("MODE", lambda e: _mode(e.get("Mode"))),
    ("SIZE", lambda e: e.get("Size") if e.get("Type") != "dir" else ""),
    ("MODIFIED", lambda e: _when(e.get("ModifiedTime"))),
    ("PATH", lambda e: e.get("Path")),
]


def size_of(point: dict[str, Any]) -> int:
    """The size the API gave: ListRecoveryPointsByResource calls it BackupSizeBytes, the
    other recovery point shapes BackupSizeInBytes (reading only the latter showed 0 B)."""
    for key in ("BackupSizeInBytes", "BackupSizeBytes"):
        if isinstance(point.get(key), int):
            return int(point[key])
    return 0


def _when(value: Any) -> str:
    """A datetime, or epoch seconds as the JSON API sends them, as ISO 8601 UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


def _mode(value: Any) -> str:
    return oct(value)[2:].rjust(4, "0") if isinstance(value, int) else str(value or "")


def pick_by_suffix(arns: list[str], ref: str) -> str:
    """The one ARN equal to or ending with ``ref``.

    >>> pick_by_suffix(["arn:x:recovery-point:abc", "arn:x:recovery-point:abd"], "abc")
    'arn:x:recovery-point:abc'
    """
    matches = [a for a in arns if a == ref or a.endswith(ref)]
    if not matches:
        raise NotFound(kind="recovery point", name=ref)
    if len(matches) > 1:
        raise InvalidInput(detail=f"{ref!r} matches {len(matches)} recovery points; give more")
    return matches[0]


def resolve(api: Api, ref: str, vault: str | None) -> str:
    """A full ARN as given, or the ARN in ``vault`` (every vault without it) ending with
    ``ref``."""
    if ref.startswith("arn:"):
        return ref
    return locate(api, ref, vault)[0]


def locate(api: Api, ref: str, vault: str | None) -> tuple[str, str]:
    """``(ARN, vault name)`` of the recovery point ``ref`` (an ARN or an id suffix).

    DescribeRecoveryPoint and DeleteRecoveryPoint need the vault's name, which an ARN
    does not carry; without ``--vault`` it is found by listing each vault's recovery
    points (ListBackupVaults, then ListRecoveryPointsByBackupVault) until one holds it.
    """
    names = (
        [vault]
        if vault
        else [
            str(v["BackupVaultName"]) for v in api.paginate("list_backup_vaults", "BackupVaultList")
        ]
    )
    found: list[tuple[str, str]] = []
    for name in names:
        points = api.paginate(
            "list_recovery_points_by_backup_vault", "RecoveryPoints", BackupVaultName=name
        )
        arns = [str(p["RecoveryPointArn"]) for p in points]
        found += [
            (a, name) for a in arns if a == ref or (not ref.startswith("arn:") and a.endswith(ref))
        ]
        if ref.startswith("arn:") and found:
            return found[0]
    if not found:
        raise NotFound(kind="recovery point", name=ref if not vault else f"{ref} in vault {vault}")
    if len(found) > 1:
        raise InvalidInput(detail=f"{ref!r} matches {len(found)} recovery points; give more")
    return found[0]


@click.group("recovery-point")
def recovery_point() -> None:
    """Recovery points: the backups themselves."""


@recovery_point.command("list")
@click.option("--vault", metavar="NAME", help="Recovery points in this vault.")
@click.option("--resource", "resource_ref", metavar="ARN|NAME", help="...of this resource.")
@json_option
@with_api
def list_(api: Api, vault: str | None, resource_ref: str | None, as_json: bool) -> None:
    """List recovery points of a vault (--vault) or of a resource (--resource)."""
    if bool(vault) == bool(resource_ref):
        raise InvalidInput(detail="give exactly one of --vault NAME or --resource ARN|NAME")
    if vault:
        rows = api.paginate(
            "list_recovery_points_by_backup_vault", "RecoveryPoints", BackupVaultName=vault
        )
    else:
        arn = resource_cmd.resolve(api, str(resource_ref))
        rows = api.paginate("list_recovery_points_by_resource", "RecoveryPoints", ResourceArn=arn)
    render.table(as_json, rows, COLUMNS)


@recovery_point.command()
@click.argument("ref", metavar="ARN|ID")
@click.option("--vault", metavar="NAME", help="Its vault (default: found by listing).")
@json_option
@with_api
def describe(api: Api, ref: str, vault: str | None, as_json: bool) -> None:
    """Show one recovery point."""
    arn, vault = locate(api, ref, vault)
    _keep_extension_members(api, "DescribeRecoveryPoint")
    doc = api.call("describe_recovery_point", BackupVaultName=vault, RecoveryPointArn=arn)
    text = "\n".join(f"{title.lower():9} {get(doc) or ''}" for title, get in COLUMNS)
    window = doc.get("SnowvaultRestorableWindow")
    if isinstance(window, dict):  # a continuous point: the instants it restores to
        text += f"\n{'window':9} {window.get('Earliest') or '-'} to {window.get('Latest') or '-'}"
    unique = doc.get("SnowvaultUniqueBytes")
    if isinstance(unique, int):  # the stored bytes delete + prune would free
        text += f"\n{'unique':9} {render.size(unique)} (freed by deleting it, once pruned)"
    render.result(as_json, doc, text)


def _keep_extension_members(api: Api, operation: str) -> None:
    """botocore drops response members its model lacks; put snowvault's ``Snowvault...``
    extension fields (DescribeRecoveryPoint's SnowvaultRestorableWindow and
    SnowvaultUniqueBytes) back."""
    events = getattr(getattr(api.backup, "meta", None), "events", None)
    if events is None:
        return

    def keep(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        try:
            body = json.loads(http_response.content or b"{}")
        except ValueError:
            return
        if isinstance(body, dict):
            parsed.update({k: v for k, v in body.items() if k.startswith("Snowvault")})

    events.register(f"after-call.backup.{operation}", keep, unique_id=f"snowvault-ext-{operation}")


@recovery_point.command()
@click.argument("ref", metavar="ARN|ID")
@click.option("--vault", metavar="NAME", help="Its vault (default: found by listing).")
@json_option
@with_api
def delete(api: Api, ref: str, vault: str | None, as_json: bool) -> None:
    """Delete one recovery point (refused under vault lock or legal hold)."""
    arn, vault = locate(api, ref, vault)
    api.call("delete_recovery_point", BackupVaultName=vault, RecoveryPointArn=arn)
    render.result(as_json, {"RecoveryPointArn": arn, "Deleted": True}, f"deleted {arn}")


@recovery_point.command("ls")
@click.argument("ref", metavar="ARN|ID")
@click.argument("path", required=False, default="/")
@click.option("-r", "--recursive", is_flag=True, help="List the whole subtree.")
@click.option("--vault", metavar="NAME", help="Needed only when REF is an id, not an ARN.")
@json_option
@with_api
def ls(api: Api, ref: str, path: str, recursive: bool, vault: str | None, as_json: bool) -> None:
    """List files and directories inside a recovery point."""
    arn = resolve(api, ref, vault)
    body = {"RecoveryPointArn": arn, "Path": path, "Recursive": recursive}
    entries = api.ext_paginate("ListRecoveryPointContents", "Entries", body)
    render.table(as_json, entries, ENTRY_COLUMNS)


@recovery_point.command("restore-metadata")
@click.argument("ref", metavar="ARN|ID")
@click.option("--vault", metavar="NAME", help="Its vault (default: found by listing).")
@json_option
@with_api
def restore_metadata(api: Api, ref: str, vault: str | None, as_json: bool) -> None:
    """The Metadata keys a restore of this point takes, with their defaults
    (GetRecoveryPointRestoreMetadata; pass them to `restore start --metadata K=V`)."""
    arn, vault = locate(api, ref, vault)
    doc = api.call(
        "get_recovery_point_restore_metadata", BackupVaultName=vault, RecoveryPointArn=arn
    )
    keys = doc.get("RestoreMetadata") or {}
    text = "\n".join(f"{k}={v}" for k, v in sorted(keys.items())) or "(no keys)"
    render.result(as_json, doc, f"# {doc.get('ResourceType') or 'resource'} restore keys\n{text}")
