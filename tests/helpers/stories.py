"""Steps the acceptance stories share: the snowvault CLI, the AWS CLI, boto3 backup/restore.

Each step talks to a running :class:`helpers.sv_server.ServerProcess` the way a user's
tool would (a subprocess, or the boto3 client the test passes in) and returns what it saw.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.sv_server import SNOWVAULT, ExtCall, ServerProcess

AWS = str(Path(sys.executable).with_name("aws"))
ROLE = "arn:aws:iam::123456789012:role/backup"
FINAL_BACKUP = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
FINAL_RESTORE = {"COMPLETED", "FAILED", "ABORTED"}


def sv(server: ServerProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``snowvault ARGS`` as the server's user; with ``ok``, assert it succeeded."""
    done = subprocess.run(
        [SNOWVAULT, *args], env=server.env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert done.returncode == 0, f"snowvault {' '.join(args)}: {done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def sv_json(server: ServerProcess, *args: str) -> Any:
    """``snowvault ARGS --json``: the last JSON line it printed."""
    return json.loads(sv(server, *args, "--json").stdout.strip().splitlines()[-1])


def aws_env(server: ServerProcess) -> dict[str, str]:
    """The environment the AWS CLI needs to reach ``server`` (and nothing from ~/.aws)."""
    return dict(
        server.env,
        AWS_ACCESS_KEY_ID=server.creds["access_key_id"],
        AWS_SECRET_ACCESS_KEY=server.creds["secret_access_key"],
        AWS_DEFAULT_REGION=server.creds["region"],
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
    )


def make_tree(root: Path, seed: int, files: int = 20, size: int = 50_000) -> int:
    """Random files under ``root`` (and one empty file); returns their total size."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        path = root / f"d{i % 4}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(1, size))
        path.write_bytes(data)
        total += len(data)
    (root / "empty.txt").write_bytes(b"")
    return total


def poll(fetch: Any, key: str, final: set[str], timeout: float = 60) -> dict[str, Any]:
    """Call ``fetch()`` until ``doc[key]`` is in ``final`` or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = fetch()
        if doc[key] in final or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def code_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    """The AWS error code and HTTP status of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def register(ext: ExtCall, name: str, source: Path) -> str:
    """Register directory ``source`` as a protected resource; returns its ARN."""
    doc = ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": name, "Source": str(source)}
    )
    return str(doc["ResourceArn"])


def backed_up(backup: Any, vault: str, resource_arn: str) -> dict[str, Any]:
    """Start a backup job and wait for its final state; returns DescribeBackupJob."""
    job = backup.start_backup_job(BackupVaultName=vault, ResourceArn=resource_arn, IamRoleArn=ROLE)
    return poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]), "State", FINAL_BACKUP
    )


def restored(backup: Any, rp_arn: str, target: Path) -> dict[str, Any]:
    """Restore ``rp_arn`` into ``target`` and wait; returns DescribeRestoreJob."""
    return restored_with(backup, rp_arn, {"targetPath": str(target)})


def restored_with(backup: Any, rp_arn: str, metadata: dict[str, str]) -> dict[str, Any]:
    """Restore ``rp_arn`` with ``metadata`` and wait; returns DescribeRestoreJob."""
    job = backup.start_restore_job(RecoveryPointArn=rp_arn, Metadata=metadata, IamRoleArn=ROLE)
    return poll(
        lambda: backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
    )
