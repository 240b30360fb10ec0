"""Issue 14's story through the real server with boto3 (two regions, two accounts): a
point copied into another region restores identical; a copy into another account
fails with AWS's access-denied message until that account's vault policy allows
``backup:CopyIntoBackupVault``; then the partner sees its copy and not the source; the
CLI lists and describes copy jobs, and ``snowvault cost report`` prices what is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.stories import ROLE, code_of, make_tree, poll, register, restored, sv_json
from helpers.sv_server import ServerProcess, new_server

WEST = "eu-west-1"
FINAL_COPY = {"COMPLETED", "FAILED", "PARTIAL"}
DENIED = "Access Denied trying to call AWS Backup service"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    config_path = server.data_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["regions"][WEST] = str(server.data_dir / "storage" / WEST)
    config_path.write_text(json.dumps(config))
    server.start()
    try:
        yield server
    finally:
        server.stop()
    failures = [line for line in server.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


def _copied(backup: Any, rp_arn: str, destination: str) -> dict[str, Any]:
    job = backup.start_copy_job(
        RecoveryPointArn=rp_arn,
        SourceBackupVaultName="main",
        DestinationBackupVaultArn=destination,
        IamRoleArn=ROLE,
    )
    doc = poll(
        lambda: backup.describe_copy_job(CopyJobId=job["CopyJobId"])["CopyJob"], "State", FINAL_COPY
    )
    return doc


def test_copies_across_regions_and_accounts(server: ServerProcess, tmp_path: Path) -> None:
    backup, west = server.client(), server.client(region=WEST)
    make_tree(tmp_path / "src", seed=14, files=6, size=20_000)
    backup.create_backup_vault(BackupVaultName="main")
    dr = west.create_backup_vault(BackupVaultName="dr")["BackupVaultArn"]
    arn = register(server.ext, "copy-src", tmp_path / "src")
    job = backup.start_backup_job(BackupVaultName="main", ResourceArn=arn, IamRoleArn=ROLE)
    done = poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        {"COMPLETED", "FAILED"},
    )
    assert done["State"] == "COMPLETED", done
    rp_arn = done["RecoveryPointArn"]

    # another region of this server
    copy = _copied(backup, rp_arn, dr)
    assert copy["State"] == "COMPLETED", copy
    assert copy["DestinationRecoveryPointArn"].startswith(f"arn:aws:backup:{WEST}:")
    points = west.list_recovery_points_by_backup_vault(BackupVaultName="dr")["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in points] == [copy["DestinationRecoveryPointArn"]]
    assert points[0]["SourceBackupVaultArn"].endswith(":backup-vault:main")
    out = restored(west, copy["DestinationRecoveryPointArn"], tmp_path / "out")
    assert out["Status"] == "COMPLETED", out
    for path in (tmp_path / "src").rglob("*.bin"):
        assert (
            tmp_path / "out" / path.relative_to(tmp_path / "src")
        ).read_bytes() == path.read_bytes()

    # refusals at the call, in the backup model's codes
    start = backup.start_copy_job
    bad = {"RecoveryPointArn": rp_arn, "SourceBackupVaultName": "main", "IamRoleArn": ROLE}
    assert code_of(start, **bad, DestinationBackupVaultArn="arn:aws:s3:::b")[0] == (
        "InvalidParameterValueException"
    )
    missing = dr.replace(":backup-vault:dr", ":backup-vault:nowhere")
    assert code_of(start, **bad, DestinationBackupVaultArn=missing)[0] == (
        "ResourceNotFoundException"
    )
    assert code_of(backup.describe_copy_job, CopyJobId="no-such-job") == (
        "ResourceNotFoundException",
        400,  # as AWS Backup sends it
    )

    # another account: refused until its vault policy allows the source account
    created = server.ext("CreateAccount", {"AccountName": "copy-partner"})
    key = created["AccessKey"]
    partner = server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    inbox = partner.create_backup_vault(BackupVaultName="inbox")["BackupVaultArn"]
    refused = _copied(backup, rp_arn, inbox)
    assert (refused["State"], refused["StatusMessage"]) == ("FAILED", DENIED)
    source_account = server.creds["account_id"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
                "Action": "backup:CopyIntoBackupVault",
                "Resource": "*",
            }
        ],
    }
    partner.put_backup_vault_access_policy(BackupVaultName="inbox", Policy=json.dumps(policy))
    accepted = _copied(backup, rp_arn, inbox)
    assert accepted["State"] == "COMPLETED", accepted
    theirs = partner.list_recovery_points_by_backup_vault(BackupVaultName="inbox")
    assert [p["RecoveryPointArn"] for p in theirs["RecoveryPoints"]] == [
        accepted["DestinationRecoveryPointArn"]
    ]
    code, _status = code_of(
        partner.describe_recovery_point, BackupVaultName="main", RecoveryPointArn=rp_arn
    )
    assert code in ("ResourceNotFoundException", "AccessDeniedException")
    assert partner.list_copy_jobs()["CopyJobs"] == []  # the jobs are the source's

    failed = backup.list_copy_jobs(ByState="FAILED")["CopyJobs"]
    assert [j["CopyJobId"] for j in failed] == [refused["CopyJobId"]]
    into_inbox = backup.list_copy_jobs(ByDestinationVaultArn=inbox)["CopyJobs"]
    assert {j["CopyJobId"] for j in into_inbox} == {refused["CopyJobId"], accepted["CopyJobId"]}
    summaries = backup.list_copy_job_summaries(AggregationPeriod="SEVEN_DAYS")["CopyJobSummaries"]
    assert sum(s["Count"] for s in summaries if s["State"] == "COMPLETED") == 2

    listed = sv_json(server, "copy", "list", "--state", "COMPLETED")
    assert {j["CopyJobId"] for j in listed} == {copy["CopyJobId"], accepted["CopyJobId"]}
    described = sv_json(server, "copy", "describe", refused["CopyJobId"])
    assert described["StatusMessage"] == DENIED

    # what it all costs, by region, read beside the running server
    report = sv_json(server, "cost", "report", "--data-dir", str(server.data_dir), "--by", "region")
    assert {line["key"] for line in report["Lines"]} == {server.creds["region"], WEST}
    assert report["MonthlyCost"] > 0 and all(line["unique_bytes"] >= 0 for line in report["Lines"])
