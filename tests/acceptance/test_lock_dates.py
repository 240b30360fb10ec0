"""Vault Lock dates to the second through the server: boto3 against `snowvault server
--test-mode`, whose frozen clock the test sets with POST /_snowvault/clock.

A compliance lock (ChangeableForDays=3) can be changed and deleted at LockDate - 1 s, and
from LockDate itself on nothing about it can: Put and Delete of the lock configuration and
DeleteRecoveryPoint (root included) answer InvalidRequestException.

boto3 signs with the wall clock throughout: SigV4 freshness is checked against the wall
clock whatever the simulated one says.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.sv_server import ExtCall, ServerProcess, move_clock, simulated_now

ROLE = "arn:aws:iam::123456789012:role/backup"
LOCK = {"MinRetentionDays": 1, "MaxRetentionDays": 100, "ChangeableForDays": 3}


def move(server: ServerProcess, **body: Any) -> datetime:
    """Set (or read, with advance_seconds=0) the server's simulated clock."""
    return simulated_now(move_clock(server, **body))


def _refused(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _backup(backup: Any, ext: ExtCall, tmp: Path, vault: str) -> str:
    source = tmp / "src"
    source.mkdir()
    (source / "a.bin").write_bytes(random.Random(7).randbytes(20_000))
    arn = ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": "d", "Source": str(source)}
    )["ResourceArn"]
    job = backup.start_backup_job(
        BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE, Lifecycle={"DeleteAfterDays": 10}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
        if doc["State"] in ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"):
            break
        time.sleep(0.2)
    assert doc["State"] == "COMPLETED", doc
    return str(doc["RecoveryPointArn"])


def test_compliance_lock_dates_to_the_second(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    start = move(snowvault_server, advance_seconds=0)
    backup.create_backup_vault(BackupVaultName="dates")
    backup.create_backup_vault(BackupVaultName="fresh")
    rp = _backup(backup, ext, tmp_path, "dates")

    # lock A and a fresh lock, both put now: LockDate = now + 3 days, to the microsecond
    backup.put_backup_vault_lock_configuration(BackupVaultName="dates", **LOCK)
    backup.put_backup_vault_lock_configuration(BackupVaultName="fresh", **LOCK)
    lock_a = backup.describe_backup_vault(BackupVaultName="dates")["LockDate"]
    assert lock_a == start + timedelta(days=3)
    assert backup.describe_backup_vault(BackupVaultName="fresh")["LockDate"] == lock_a

    # LockDate - 1 s: still grace time; the fresh lock goes, lock A is changed (lock B)
    move(snowvault_server, now=(lock_a - timedelta(seconds=1)).isoformat())
    backup.delete_backup_vault_lock_configuration(BackupVaultName="fresh")
    assert backup.describe_backup_vault(BackupVaultName="fresh")["Locked"] is False
    backup.put_backup_vault_lock_configuration(
        BackupVaultName="dates", MinRetentionDays=2, MaxRetentionDays=100, ChangeableForDays=3
    )
    described = backup.describe_backup_vault(BackupVaultName="dates")
    lock_b = described["LockDate"]
    assert lock_b == lock_a - timedelta(seconds=1) + timedelta(days=3)
    assert (described["Locked"], described["MinRetentionDays"]) == (True, 2)

    # exactly LockDate B: immutable for everyone, root included
    assert move(snowvault_server, now=lock_b.isoformat()) == lock_b
    assert _refused(
        backup.put_backup_vault_lock_configuration, BackupVaultName="dates", **LOCK
    ) == ("InvalidRequestException", 400)
    assert _refused(backup.delete_backup_vault_lock_configuration, BackupVaultName="dates") == (
        "InvalidRequestException",
        400,
    )
    assert _refused(backup.delete_recovery_point, BackupVaultName="dates", RecoveryPointArn=rp) == (
        "InvalidRequestException",
        400,
    )
    described = backup.describe_backup_vault(BackupVaultName="dates")
    assert (described["LockDate"], described["MinRetentionDays"]) == (lock_b, 2)
    points = backup.list_recovery_points_by_backup_vault(BackupVaultName="dates")
    assert [p["RecoveryPointArn"] for p in points["RecoveryPoints"]] == [rp]
