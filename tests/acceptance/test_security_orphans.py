"""No orphans over HTTP (issue 8): DeleteBackupVault while a backup writes into the vault
is refused and the backup completes; once empty, the vault deletes and leaves no
directory; a vault deleted first takes no new job; a CreateBackupVault with a bad key
leaves nothing. A real `snowvault server --test-mode` subprocess, boto3 signing with the
wall clock.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.sv_server import ServerProcess, new_server

ROLE = "arn:aws:iam::123456789012:role/backup"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    sources = tmp_path_factory.mktemp("orphan-sources")
    srv = new_server(tmp_path_factory)
    srv.init("--allow-path", str(sources), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    srv.start()
    try:
        yield srv, sources
    finally:
        srv.stop()
    failures = [line for line in srv.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"
    assert "IntegrityError" not in srv.log.read_text()


def _register(srv: ServerProcess, sources: Path, name: str, size: int) -> str:
    root = sources / name
    root.mkdir()
    for n in range(max(1, size // (16 * MiB))):
        (root / f"part-{n}").write_bytes(os.urandom(min(size, 16 * MiB)))
    doc = srv.ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": name, "Source": str(root)}
    )
    return str(doc["ResourceArn"])


def _vault_dirs(srv: ServerProcess) -> list[str]:
    account = srv.data_dir / "storage" / srv.creds["region"] / srv.creds["account_id"]
    return sorted(p.name for p in account.iterdir()) if account.exists() else []


def _wait(client: Any, job_id: str, states: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.describe_backup_job(BackupJobId=job_id)
        if job["State"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def test_delete_while_a_backup_runs_is_refused_and_the_backup_completes(
    server: tuple[ServerProcess, Path],
) -> None:
    srv, sources = server
    client = srv.client()
    client.create_backup_vault(BackupVaultName="busy")
    arn = _register(srv, sources, "big", 192 * MiB)
    job_id = client.start_backup_job(BackupVaultName="busy", ResourceArn=arn, IamRoleArn=ROLE)[
        "BackupJobId"
    ]
    assert _wait(client, job_id, {"RUNNING", "COMPLETED"})["State"] == "RUNNING"
    with pytest.raises(ClientError) as info:
        client.delete_backup_vault(BackupVaultName="busy")
    err = info.value.response["Error"]
    assert err["Code"] == "InvalidRequestException"
    running = f"Backup vault busy cannot be deleted while backup job {job_id} is RUNNING"
    assert err["Message"] in (
        running,
        "Backup vault cannot be deleted because it contains recovery points",
    )

    done = _wait(client, job_id, {"COMPLETED", "FAILED", "ABORTED", "PARTIAL"}, timeout=300)
    assert done["State"] == "COMPLETED", done
    vault = client.describe_backup_vault(BackupVaultName="busy")
    assert vault["NumberOfRecoveryPoints"] == 1
    with pytest.raises(ClientError, match="contains recovery points"):
        client.delete_backup_vault(BackupVaultName="busy")

    before = _vault_dirs(srv)
    client.delete_recovery_point(BackupVaultName="busy", RecoveryPointArn=done["RecoveryPointArn"])
    client.delete_backup_vault(BackupVaultName="busy")
    with pytest.raises(ClientError) as gone:
        client.describe_backup_vault(BackupVaultName="busy")
    assert gone.value.response["Error"]["Code"] == "AccessDeniedException"  # AWS's "no vault"
    after = _vault_dirs(srv)
    assert len(after) == len(before) - 1
    assert not [d for d in after if re.match(r"busy-[0-9a-f]+$", d)]  # no orphan directory


def test_a_deleted_vault_takes_no_new_backup_job(server: tuple[ServerProcess, Path]) -> None:
    srv, sources = server
    client = srv.client()
    client.create_backup_vault(BackupVaultName="first-gone")
    arn = _register(srv, sources, "small", 1 * MiB)
    client.delete_backup_vault(BackupVaultName="first-gone")
    with pytest.raises(ClientError) as info:
        client.start_backup_job(BackupVaultName="first-gone", ResourceArn=arn, IamRoleArn=ROLE)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert not [d for d in _vault_dirs(srv) if d.startswith("first-gone-")]


def test_a_create_with_a_bad_key_leaves_nothing(server: tuple[ServerProcess, Path]) -> None:
    srv, _sources = server
    client = srv.client()
    before = _vault_dirs(srv)
    key_id = "00000000-0000-4000-8000-000000000000"
    bad = f"arn:aws:kms:{srv.creds['region']}:{srv.creds['account_id']}:key/{key_id}"
    with pytest.raises(ClientError) as info:
        client.create_backup_vault(BackupVaultName="badkey", EncryptionKeyArn=bad)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    with pytest.raises(ClientError):
        client.describe_backup_vault(BackupVaultName="badkey")
    assert _vault_dirs(srv) == before
