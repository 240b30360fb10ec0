"""The backup story with the real AWS CLI (``aws backup ... --endpoint-url``).

The protected resource is registered with the snowvault CLI (AWS Backup has no API to
register a directory); every other step is an ``aws backup`` command with AWS_* variables.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.stories import AWS, aws_env, sv_json
from helpers.sv_server import ServerProcess

pytestmark = pytest.mark.skipif(not Path(AWS).exists(), reason="awscli (dev extra) missing")


def aws(server: ServerProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [AWS, "backup", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=aws_env(server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert done.returncode == 0, f"aws backup {' '.join(args)}: {done.stderr}"
    return done


def aws_json(server: ServerProcess, *args: str) -> Any:
    out = aws(server, *args).stdout
    return json.loads(out) if out.strip() else {}


def poll(server: ServerProcess, args: list[str], key: str, done: set[str]) -> dict[str, Any]:
    for _ in range(240):
        doc: dict[str, Any] = aws_json(server, *args)
        if doc[key] in done:
            return doc
        time.sleep(0.25)
    pytest.fail(f"{args} did not finish: {doc}")


def test_story_with_the_aws_cli(snowvault_server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    payload = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 1000}
    for rel, data in payload.items():
        (source / rel).write_bytes(data)
    resource = sv_json(
        snowvault_server, "resource", "add", "directory", str(source), "--name", "awsdir"
    )
    account = snowvault_server.creds["account_id"]

    created = aws_json(snowvault_server, "create-backup-vault", "--backup-vault-name", "awsv")
    assert created["BackupVaultArn"].endswith(f":{account}:backup-vault:awsv")
    names = [
        v["BackupVaultName"]
        for v in aws_json(snowvault_server, "list-backup-vaults")["BackupVaultList"]
    ]
    assert "awsv" in names

    started = aws_json(
        snowvault_server,
        "start-backup-job",
        "--backup-vault-name",
        "awsv",
        "--resource-arn",
        resource["ResourceArn"],
        "--iam-role-arn",
        f"arn:aws:iam::{account}:role/snowvault",
    )
    job = poll(
        snowvault_server,
        ["describe-backup-job", "--backup-job-id", started["BackupJobId"]],
        "State",
        {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"},
    )
    assert job["State"] == "COMPLETED", job
    rp_arn = job["RecoveryPointArn"]

    points = aws_json(
        snowvault_server, "list-recovery-points-by-backup-vault", "--backup-vault-name", "awsv"
    )["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in points] == [rp_arn]
    described = aws_json(
        snowvault_server,
        "describe-recovery-point",
        "--backup-vault-name",
        "awsv",
        "--recovery-point-arn",
        rp_arn,
    )
    assert (described["Status"], described["ResourceArn"]) == ("COMPLETED", resource["ResourceArn"])

    target = tmp_path / "restored"
    restore = aws_json(
        snowvault_server,
        "start-restore-job",
        "--recovery-point-arn",
        rp_arn,
        "--iam-role-arn",
        f"arn:aws:iam::{account}:role/snowvault",
        "--metadata",
        f"targetPath={target}",
    )
    finished = poll(
        snowvault_server,
        ["describe-restore-job", "--restore-job-id", restore["RestoreJobId"]],
        "Status",
        {"COMPLETED", "FAILED", "ABORTED"},
    )
    assert finished["Status"] == "COMPLETED", finished
    for rel, data in payload.items():
        assert (target / rel).read_bytes() == data

    aws(
        snowvault_server,
        "delete-recovery-point",
        "--backup-vault-name",
        "awsv",
        "--recovery-point-arn",
        rp_arn,
    )
    left = aws_json(
        snowvault_server, "list-recovery-points-by-backup-vault", "--backup-vault-name", "awsv"
    )
    assert left["RecoveryPoints"] == []
    aws(snowvault_server, "delete-backup-vault", "--backup-vault-name", "awsv")
    sv_json(snowvault_server, "resource", "remove", "awsdir")


def test_missing_vault_error_from_the_aws_cli(snowvault_server: ServerProcess) -> None:
    done = aws(snowvault_server, "describe-backup-vault", "--backup-vault-name", "nope", ok=False)
    assert done.returncode in (254, 255)
    # AWS's answer for a vault that does not exist (Ansible's backup_vault relies on it)
    assert "AccessDeniedException" in done.stderr
