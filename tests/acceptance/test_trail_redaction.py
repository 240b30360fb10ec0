"""The audit trail through the real server (issue 16): each call's requestParameters and
responseElements are kept, secrets taken out. Abuse case: a caller sends a DSN password,
a Properties password and a recovery-key passphrase, and receives a secret access key;
none of them may reach DATA_DIR/trail, which the operator and every backup of DATA_DIR
reads."""

from __future__ import annotations

import contextlib
import gzip
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.stories import sv
from helpers.sv_server import ServerProcess

DSN_PASSWORD = "dsn-Pw-8c1f0a"
PROP_PASSWORD = "prop-Pw-44e2b9"
PASSPHRASE = "passphrase-of-the-recovery-key-91"


def _trail_text(server: ServerProcess) -> tuple[str, list[dict[str, Any]]]:
    """Every byte of the trail (gz files opened) and every filed record."""
    root = server.data_dir / "trail"
    text, records = [], []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
            doc = json.loads(data)
            records += doc.get("Records", [])
        text.append(data.decode(errors="replace"))
    return "\n".join(text), records


def _one(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in records if r["eventName"].rpartition("/")[2] == name]
    assert found, f"no {name} record in the trail"
    return found[-1]


def test_secrets_sent_or_answered_never_reach_the_trail(
    snowvault_server: ServerProcess, backup: Any
) -> None:
    ext = snowvault_server.ext
    backup.create_backup_vault(BackupVaultName="audited")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "backup:DeleteBackupVault",
                "Resource": "*",
            }
        ],
    }
    backup.put_backup_vault_access_policy(BackupVaultName="audited", Policy=json.dumps(policy))
    # whether the database answers does not matter: the request is recorded either way
    with contextlib.suppress(AssertionError):
        ext(
            "RegisterResource",
            {
                "ResourceType": "PostgreSQL",
                "Name": "pg",
                "Source": f"postgresql://alice:{DSN_PASSWORD}@127.0.0.1:1/app",
                "Properties": {"password": PROP_PASSWORD},
            },
        )
    ext("ExportRecoveryKey", {"BackupVaultName": "audited", "Passphrase": PASSPHRASE})
    ext("CreateUser", {"UserName": "auditee"})
    answered = ext("CreateAccessKey", {"UserName": "auditee"})["AccessKey"]
    secret = answered["SecretAccessKey"]
    with pytest.raises(ClientError):
        backup.describe_backup_vault(BackupVaultName="no-such-vault")

    data_dir = str(snowvault_server.data_dir)
    sv(snowvault_server, "trail", "flush", "--data-dir", data_dir)
    text, records = _trail_text(snowvault_server)
    log = snowvault_server.log.read_text(errors="replace")
    for leaked in (DSN_PASSWORD, PROP_PASSWORD, PASSPHRASE, secret):
        assert leaked not in text and leaked not in log

    registered = _one(records, "RegisterResource")["requestParameters"]
    assert registered["Source"] == (
        "postgresql://alice:HIDDEN_DUE_TO_SECURITY_REASONS@127.0.0.1:1/app"
    )
    assert registered["Properties"] == {"password": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    exported = _one(records, "ExportRecoveryKey")
    assert exported["requestParameters"] == {
        "BackupVaultName": "audited",
        "Passphrase": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    key = _one(records, "CreateAccessKey")["responseElements"]["AccessKey"]
    assert key["SecretAccessKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert key["AccessKeyId"] == answered["AccessKeyId"]  # the key id is no secret

    created = _one(records, "CreateBackupVault")
    assert created["requestParameters"]["BackupVaultName"] == "audited"
    assert created["responseElements"]["BackupVaultArn"].endswith(":backup-vault:audited")
    put = _one(records, "PutBackupVaultAccessPolicy")["requestParameters"]
    assert json.loads(put["Policy"]) == policy  # policy bodies are kept
    missing = _one(records, "DescribeBackupVault")
    assert missing["errorCode"] and missing["errorMessage"]
    assert missing["requestParameters"] == {"BackupVaultName": "no-such-vault"}
    assert missing["responseElements"] is None
