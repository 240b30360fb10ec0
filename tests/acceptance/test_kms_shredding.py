"""Crypto-shredding end to end: a vault under a customer key, ScheduleKeyDeletion, the
server's test clock moved past the waiting period, and then nobody reads the vault —
not a restore job, not `snowvault repo` with the recovery key exported earlier.

The clock only moves forward, so this module has its own server; boto3 signs with the
wall clock throughout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers.stories import backed_up, register, restored, sv, sv_json
from helpers.sv_server import ServerProcess, move_clock, new_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=30, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kms_client(server: ServerProcess) -> Any:
    creds = server.creds
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def wait_deleted(kms: Any, key_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        time.sleep(0.2)
    return state


def test_a_deleted_key_leaves_the_vault_unreadable_by_anyone(
    server: ServerProcess, tmp_path: Path
) -> None:
    kms, backup = kms_client(server), server.client()
    key = kms.create_key(Description="shred me")["KeyMetadata"]
    backup.create_backup_vault(BackupVaultName="shred", EncryptionKeyArn=key["Arn"])
    source = tmp_path / "src"
    source.mkdir()
    (source / "secret.txt").write_text("gone after the waiting period\n")
    job = backed_up(backup, "shred", register(server.ext, "shred-src", source))
    assert job["State"] == "COMPLETED", job
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long recovery passphrase\n")
    url = sv_json(server, "vault", "export-recovery-key", "--vault", "shred",
                  "--password-file", str(passphrase))["RepositoryUrl"]  # fmt: skip
    ls = ["repo", "ls", "--repo", url, "--password-file", str(passphrase), "latest", "/", "-r"]
    assert "secret.txt" in sv(server, *ls).stdout

    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    move_clock(server, advance_seconds=timedelta(days=7).total_seconds() - 60)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    move_clock(server, now=(scheduled["DeletionDate"] + timedelta(seconds=1)).isoformat())
    assert wait_deleted(kms, key["KeyId"]) == "NotFoundException"

    failed = restored(backup, job["RecoveryPointArn"], tmp_path / "restore")
    assert failed["Status"] == "FAILED"
    assert "was deleted" in failed["StatusMessage"], failed["StatusMessage"]
    offline = sv(server, *ls, ok=False)
    assert offline.returncode != 0 and "secret.txt" not in offline.stdout
    vault = backup.describe_backup_vault(BackupVaultName="shred")
    assert vault["EncryptionKeyArn"] == key["Arn"]
