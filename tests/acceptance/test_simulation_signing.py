"""Test mode's simulated clock and request signing: POST /_snowvault/clock moves the
server a month ahead, and boto3, the extension API and the snowvault CLI, all signing
with the WALL clock, keep working; what the handlers see is the simulated time.

SigV4 freshness is checked against the wall clock (the simulated one drives schedules,
windows, lifecycles and leases only): a request signed with the simulated time, a month
ahead of the real one, is refused as not yet current. Before this, every signed call
after a clock move failed with "Signature expired" unless the client faked its clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers.stories import sv_json
from helpers.sv_server import ExtCall, ServerProcess, move_clock, simulated_now

A_MONTH = timedelta(days=31)


def _kms(server: ServerProcess) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=server.creds["access_key_id"],
        aws_secret_access_key=server.creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_wall_clock_signatures_keep_working_a_month_ahead(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup.create_backup_vault(BackupVaultName="before-the-move")
    wall_before = datetime.now(UTC)

    now = simulated_now(move_clock(snowvault_server, advance_seconds=A_MONTH.total_seconds()))
    assert now - wall_before >= A_MONTH - timedelta(minutes=1)

    # boto3 signs with the wall clock, a month behind the server's simulated time
    backup.create_backup_vault(BackupVaultName="after-the-move")
    vaults = {v["BackupVaultName"]: v for v in backup.list_backup_vaults()["BackupVaultList"]}
    assert set(vaults) >= {"before-the-move", "after-the-move"}
    created = vaults["after-the-move"]["CreationDate"]
    assert now <= created < now + timedelta(minutes=10)  # handlers see the simulated time
    assert vaults["before-the-move"]["CreationDate"] < wall_before + timedelta(minutes=10)
    key = _kms(snowvault_server).create_key(Description="signed with the wall clock")
    assert key["KeyMetadata"]["CreationDate"] >= now
    listed = ext("ListResources", {})
    assert listed["Resources"] == []
    cli = sv_json(snowvault_server, "vault", "list")
    assert "after-the-move" in json.dumps(cli)

    # signed with the simulated time (a month in the wall clock's future): refused
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda remove_tzinfo=True: now.replace(tzinfo=None) if remove_tzinfo else now,
    )
    with pytest.raises(ClientError) as refused:
        snowvault_server.client().list_backup_vaults()
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert "not yet current" in error["Message"]
