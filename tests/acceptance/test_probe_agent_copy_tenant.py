"""A copy of an agent's point in another account must not route that account's restores
to the first account's agent (helper Q's probe; docs/design/agents.md, "another tenant").

Account A backs up a directory on its agent host; A copies the point into account B's
vault (B's vault policy allows it). B's StartRestoreJob of its copy took the worker label
of A's resource (``agent:A:host``), so A's agent claimed B's job: it received B's job
(Metadata, the point's manifest, a job key) and created B's targetPath on A's host before
its next call was refused. B's restore is B's: the server's worker runs it, like a
restore of any point whose resource is not the caller's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from helpers import stories
from helpers.sv_server import SNOWVAULT, ServerProcess

HOST = "probe-copy-host"


def _backup_of(server: ServerProcess, key: dict[str, str]) -> Any:
    return boto3.client(
        "backup",
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _agent_point(server: ServerProcess, tmp_path: Path) -> tuple[dict[str, str], str]:
    """Account A's agent key and a COMPLETED point its agent process made."""
    key = server.ext("EnrollAgent", {"Host": HOST})["AccessKey"]
    cred_file = tmp_path / "agent.json"
    cred_file.write_text(json.dumps({"AccessKey": key}))
    cred_file.chmod(0o600)
    source = tmp_path / "a-src"
    stories.make_tree(source, seed=7, files=4, size=4000)
    body = {
        "ResourceType": "Directory",
        "Name": "probe-copy-src",
        "Source": str(source),
        "WorkerLabel": f"agent:{HOST}",
    }
    arn = server.ext("RegisterResource", body)["ResourceArn"]
    backup = server.client()
    backup.create_backup_vault(BackupVaultName="probe-a")
    job = backup.start_backup_job(
        BackupVaultName="probe-a", ResourceArn=arn, IamRoleArn=stories.ROLE
    )
    env = {k: v for k, v in server.env.items() if not k.startswith("AWS_")}
    ran = subprocess.run(
        [
            *(SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, "--host", HOST),
            *("--allow-path", str(tmp_path), "--credentials-file", str(cred_file), "--once"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    done = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
    assert done["State"] == "COMPLETED", done
    return key, str(done["RecoveryPointArn"])


def _claimed(server: ServerProcess, key: dict[str, str]) -> dict[str, Any]:
    status, doc = server.agent_call(key, "AgentClaimJob", {"WaitSeconds": 2})
    assert status == 200, doc
    return doc


def test_a_restore_of_a_copy_in_another_account_is_not_the_agents(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    server = snowvault_server
    agent_key, point = _agent_point(server, tmp_path)
    b_key = server.ext("CreateAccount", {"AccountName": "probe-copy-b"})["AccessKey"]
    a_account = point.split(":")[4]
    b_backup = _backup_of(server, b_key)
    b_vault = b_backup.create_backup_vault(BackupVaultName="probe-b")["BackupVaultArn"]
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{a_account}:root"},
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
    }
    b_backup.put_backup_vault_access_policy(
        BackupVaultName="probe-b",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    a_backup = server.client()
    copy = a_backup.start_copy_job(
        RecoveryPointArn=point,
        SourceBackupVaultName="probe-a",
        DestinationBackupVaultArn=b_vault,
        IamRoleArn=stories.ROLE,
    )
    copied = stories.poll(
        lambda: a_backup.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"],
        "State",
        {"COMPLETED", "FAILED"},
    )
    assert copied["State"] == "COMPLETED", copied
    [b_point] = b_backup.list_recovery_points_by_backup_vault(BackupVaultName="probe-b")[
        "RecoveryPoints"
    ]
    target = tmp_path / "b-target"
    job = b_backup.start_restore_job(
        RecoveryPointArn=b_point["RecoveryPointArn"],
        Metadata={"targetPath": str(target)},
        IamRoleArn=stories.ROLE,
    )
    # A's agent is offered nothing of B's (the server's worker may take the job first,
    # so a claim that finds nothing would prove little alone: the job's end says who ran it)
    claimed = _claimed(server, agent_key)
    assert "Job" not in claimed, claimed
    ended = stories.poll(
        lambda: b_backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
        "Status",
        stories.FINAL_RESTORE,
    )
    assert ended["Status"] == "COMPLETED", ended
    source = tmp_path / "a-src"
    restored = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
    assert restored == sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert restored
    assert all((target / r).read_bytes() == (source / r).read_bytes() for r in restored)
