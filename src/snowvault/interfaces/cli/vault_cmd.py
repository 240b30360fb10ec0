"""``snowvault vault``: create, list, describe and delete backup vaults over the AWS API.

A pure API client: talks to the server through :mod:`client` only; must not import the
server side (interfaces.api, app, services, catalog).
"""

from __future__ import annotations

from typing import Any

import click

from snowvault.core.errors import InvalidInput, NotFound
from snowvault.interfaces.cli import client, render
from snowvault.interfaces.cli.client import Api, json_option, with_api

COLUMNS: list[render.Column] = [
    ("NAME", lambda v: v.get("BackupVaultName")),
    ("RECOVERY POINTS", lambda v: v.get("NumberOfRecoveryPoints")),
    ("LOCKED", lambda v: "yes" if v.get("Locked") else "no"),
    ("CREATED", lambda v: _when(v.get("CreationDate"))),
    ("ARN", lambda v: v.get("BackupVaultArn")),
]


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


@click.group()
def vault() -> None:
    """Backup vaults: where recovery points are kept."""


@vault.command()
@click.argument("name")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@json_option
@with_api
def create(api: Api, name: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Create vault NAME."""
    params: dict[str, Any] = {"BackupVaultName": name}
    if tags:
        params["BackupVaultTags"] = render.parse_tags(tags)
    doc = api.call("create_backup_vault", **params)
    render.result(as_json, doc, f"created vault {name} ({doc.get('BackupVaultArn')})")


@vault.command("list")
@json_option
@with_api
def list_(api: Api, as_json: bool) -> None:
    """List vaults."""
    render.table(as_json, api.paginate("list_backup_vaults", "BackupVaultList"), COLUMNS)


@vault.command()
@click.argument("name")
@json_option
@with_api
def describe(api: Api, name: str, as_json: bool) -> None:
    """Show vault NAME."""
    try:
        doc = api.call("describe_backup_vault", BackupVaultName=name)
    except client.ApiAccessDenied as exc:
        raise _not_found_or_denied(name, exc) from None
    if as_json:
        render.result(True, doc, "")
        return
    lines = [
        f"{title.lower():16} {get(doc) if get(doc) is not None else ''}" for title, get in COLUMNS
    ]
    lines.append(f"{'encryption key':16} {doc.get('EncryptionKeyArn') or ''}")
    render.result(False, doc, "\n".join(lines))


# AWS answers DescribeBackupVault for a vault that does not exist with this 403 (so does the
# server, for clients that depend on it); a human is told what it most likely means.
HIDDEN_VAULT_MESSAGE = "Insufficient privileges to perform this action."


def _not_found_or_denied(name: str, exc: client.ApiAccessDenied) -> Exception:
    if exc.fields.get("detail") != HIDDEN_VAULT_MESSAGE:
        return exc  # a policy denied it: say so as it is
    return NotFound(kind="vault", name=f"{name} (it does not exist, or you may not see it)")


@vault.command()
@click.argument("name")
@json_option
@with_api
def delete(api: Api, name: str, as_json: bool) -> None:
    """Delete vault NAME (it must hold no recovery points)."""
    api.call("delete_backup_vault", BackupVaultName=name)
    render.result(as_json, {"BackupVaultName": name, "Deleted": True}, f"deleted vault {name}")


@vault.command("export-recovery-key")
@click.option("--vault", "vault_name", required=True, help="The vault to export a key for.")
@click.option(
    "--password-file",
    required=True,
    type=click.File("r"),
    help="File whose first line is the new recovery passphrase (12+ characters).",
)
@json_option
@with_api
def export_recovery_key(api: Api, vault_name: str, password_file: Any, as_json: bool) -> None:
    """Add a passphrase slot to a vault so `snowvault repo` can read it without the server.

    Prints the repository URL; keep it with the passphrase for disaster recovery. If the
    vault's KMS key is later deleted, the server removes this slot too (crypto-shredding).
    """
    try:
        passphrase = password_file.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise InvalidInput(detail="--password-file is not UTF-8 text") from None
    body = {"BackupVaultName": vault_name, "Passphrase": passphrase}
    doc = api.ext("ExportRecoveryKey", body)
    render.result(as_json, doc, f"{doc.get('RepositoryUrl')}")
