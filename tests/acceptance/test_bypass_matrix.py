"""A representative subset of the bypass matrix through the real boto3 client against a
`snowvault server --test-mode` subprocess: the full matrix (every path x principal x lock
state x legal hold, with the FakeClock for lock dates to the second) runs at the service
level in tests/unit/services/test_bypass_matrix_service.py; here we show that the server
adds what it must: SigV4 principals, the authorize hook on every operation, the IAM
extension actions, and AWS's error codes and HTTP statuses on the wire.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError

from helpers.sv_server import ExtCall, ServerProcess

ROLE = "arn:aws:iam::123456789012:role/backup"
LOCK_ACTIONS = [
    "backup:PutBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultLockConfiguration",
]


def _policy(*deny: str) -> str:
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "backup:*", "Resource": "*"}]
    if deny:
        statements.append({"Effect": "Deny", "Action": list(deny), "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _code(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return (
        err["Error"]["Code"],
        err["ResponseMetadata"]["HTTPStatusCode"],
        err["Error"].get("Message", ""),
    )


def _backup(server: ServerProcess, backup: Any, ext: ExtCall, tmp: Path, n: int) -> str:
    source = tmp / f"src{n}"
    source.mkdir()
    (source / "a.bin").write_bytes(random.Random(n).randbytes(20_000))
    arn = ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": f"m{n}", "Source": str(source)}
    )["ResourceArn"]
    job = backup.start_backup_job(
        BackupVaultName="matrix",
        ResourceArn=arn,
        IamRoleArn=ROLE,
        Lifecycle={"DeleteAfterDays": 10},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
        if doc["State"] in ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"):
            break
        time.sleep(0.2)
    assert doc["State"] == "COMPLETED", doc
    return str(doc["RecoveryPointArn"])


def _server_now(server: ServerProcess) -> datetime:
    """The server's clock (test mode: it may differ from ours); advancing by 0 reads it."""
    resp = urllib3.request(
        "POST", server.endpoint + "/_snowvault/clock", body=b'{"advance_seconds": 0}'
    )
    assert resp.status == 200, resp.data
    return datetime.fromisoformat(json.loads(resp.data)["Now"])


def _user(server: ServerProcess, ext: ExtCall, name: str, policy: str) -> Any:
    ext("CreateUser", {"UserName": name})
    ext("PutUserPolicy", {"UserName": name, "PolicyName": "p", "PolicyDocument": policy})
    key = ext("CreateAccessKey", {"UserName": name})["AccessKey"]
    return server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])


def test_bypass_subset_over_the_wire(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    backup.create_backup_vault(BackupVaultName="matrix")
    rp1 = _backup(snowvault_server, backup, ext, tmp_path, 1)
    owner = _user(snowvault_server, ext, "owner", _policy(*LOCK_ACTIONS))
    other_key = ext("CreateAccount", {"AccountName": "tenant-b"})["AccessKey"]
    other = snowvault_server.client(
        key=other_key["AccessKeyId"], secret=other_key["SecretAccessKey"]
    )

    # governance lock: Describe shows it; the owner may not remove it, root may
    backup.put_backup_vault_lock_configuration(
        BackupVaultName="matrix", MinRetentionDays=1, MaxRetentionDays=100
    )
    vault = backup.describe_backup_vault(BackupVaultName="matrix")
    assert (vault["Locked"], vault["MinRetentionDays"], vault["MaxRetentionDays"]) == (True, 1, 100)
    listed = {v["BackupVaultName"]: v for v in backup.list_backup_vaults()["BackupVaultList"]}
    assert listed["matrix"]["Locked"] is True
    delete = {"BackupVaultName": "matrix", "RecoveryPointArn": rp1}
    assert _code(owner.delete_recovery_point, **delete)[:2] == ("InvalidRequestException", 400)
    code, status, message = _code(
        owner.delete_backup_vault_lock_configuration, BackupVaultName="matrix"
    )
    assert (code, status) == ("AccessDeniedException", 403)
    assert (
        "backup:DeleteBackupVaultLockConfiguration" in message and ":backup-vault:matrix" in message
    )
    code, status, message = _code(other.delete_recovery_point, **delete)
    assert (code, status) == ("AccessDeniedException", 403) and rp1 in message
    assert _code(backup.delete_backup_vault, BackupVaultName="matrix")[:2] == (
        "InvalidRequestException",
        400,
    )

    # legal hold: even root's delete is refused with InvalidResourceStateException
    hold = backup.create_legal_hold(
        Title="audit", Description="inquiry", RecoveryPointSelection={"VaultNames": ["matrix"]}
    )
    assert hold["Status"] == "ACTIVE"
    covered = backup.list_recovery_points_by_legal_hold(LegalHoldId=hold["LegalHoldId"])
    assert [p["RecoveryPointArn"] for p in covered["RecoveryPoints"]] == [rp1]
    assert _code(backup.delete_recovery_point, **delete)[:2] == (
        "InvalidResourceStateException",
        400,
    )
    cancel = backup.cancel_legal_hold(LegalHoldId=hold["LegalHoldId"], CancelDescription="done")
    assert cancel["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert backup.get_legal_hold(LegalHoldId=hold["LegalHoldId"])["Status"] == "CANCELED"

    # the classic pattern: a vault policy denying deletes to everyone stops root too
    deny_all = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "backup:DeleteRecoveryPoint",
                "Resource": "*",
            }
        ],
    }
    backup.put_backup_vault_access_policy(BackupVaultName="matrix", Policy=json.dumps(deny_all))
    assert (
        json.loads(backup.get_backup_vault_access_policy(BackupVaultName="matrix")["Policy"])
        == deny_all
    )
    code, status, message = _code(backup.delete_recovery_point, **delete)
    assert (code, status) == ("AccessDeniedException", 403)
    assert "explicit deny in a resource-based policy" in message
    backup.delete_backup_vault_access_policy(BackupVaultName="matrix")

    # a lock in place stops root too; governance means root may remove the lock, then delete
    assert _code(backup.delete_recovery_point, **delete)[:2] == ("InvalidRequestException", 400)
    backup.delete_backup_vault_lock_configuration(BackupVaultName="matrix")
    backup.delete_recovery_point(**delete)
    backup.put_backup_vault_lock_configuration(
        BackupVaultName="matrix", MinRetentionDays=1, MaxRetentionDays=100
    )

    # a job whose retention is outside [Min, Max] fails and says why
    rp2 = _backup(snowvault_server, backup, ext, tmp_path, 2)
    src = tmp_path / "src3"
    src.mkdir()
    arn = ext("RegisterResource", {"ResourceType": "Directory", "Name": "m3", "Source": str(src)})[
        "ResourceArn"
    ]
    job = backup.start_backup_job(
        BackupVaultName="matrix",
        ResourceArn=arn,
        IamRoleArn=ROLE,
        Lifecycle={"DeleteAfterDays": 500},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
        if doc["State"] == "FAILED":
            break
        time.sleep(0.2)
    assert doc["State"] == "FAILED" and "MaxRetentionDays (100)" in doc["StatusMessage"]

    # compliance mode: LockDate = now + ChangeableForDays; changeable in grace
    before = _server_now(snowvault_server)
    backup.put_backup_vault_lock_configuration(
        BackupVaultName="matrix", MinRetentionDays=1, MaxRetentionDays=100, ChangeableForDays=3
    )
    lock_date = backup.describe_backup_vault(BackupVaultName="matrix")["LockDate"]
    assert (
        before + timedelta(days=3) <= lock_date <= _server_now(snowvault_server) + timedelta(days=3)
    )
    assert _code(owner.delete_recovery_point, BackupVaultName="matrix", RecoveryPointArn=rp2)[
        :2
    ] == ("InvalidRequestException", 400)
    assert _code(
        backup.put_backup_vault_lock_configuration, BackupVaultName="matrix", MinRetentionDays=0
    )[0] in ("InvalidParameterValueException", "ValidationException")
    points = backup.list_recovery_points_by_backup_vault(BackupVaultName="matrix")
    assert [p["RecoveryPointArn"] for p in points["RecoveryPoints"]] == [rp2]


def test_iam_cli_creates_a_working_limited_user(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    import subprocess

    from helpers.sv_server import SNOWVAULT

    def sv(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [SNOWVAULT, *args],
            env=snowvault_server.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    sv("iam", "user", "create", "reader")
    read_only = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "backup:List*", "Resource": "*"}],
        }
    )
    sv("iam", "policy", "put", "reader", "read-only", "-", stdin=read_only)
    key = json.loads(sv("iam", "access-key", "create", "reader", "--json"))["AccessKey"]
    assert "reader" in sv("iam", "user", "list")
    reader = snowvault_server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert "BackupVaultList" in reader.list_backup_vaults()
    code, status, message = _code(reader.create_backup_vault, BackupVaultName="nope")
    assert (code, status) == ("AccessDeniedException", 403)
    assert (
        f"{key['PrincipalArn']} is not authorized to perform: backup:CreateBackupVault" in message
    )
