"""A group (Composite) through the real server with boto3: registered by the extension
API, one backup job of it makes a parent job and point with a child per member (AWS's
IsParent, ParentJobId, ChildJobsInState, ParentRecoveryPointArn,
CompositeMemberIdentifier, the ByParent filters), restored member by member, and deleted
whole (a nested point alone is refused until DisassociateRecoveryPointFromParent)."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path
from typing import Any

from helpers.stories import FINAL_BACKUP, FINAL_RESTORE, ROLE, code_of, make_tree, poll, register
from helpers.sv_server import ExtCall, ServerProcess


def _group(ext: ExtCall, name: str, members: list[str]) -> str:
    doc = ext(
        "RegisterResource",
        {
            "ResourceType": "Composite",
            "Name": name,
            "Source": f"group:{name}",
            "Properties": {"members": json.dumps(members)},
        },
    )
    return str(doc["ResourceArn"])


def test_group_story(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    make_tree(tmp_path / "web", seed=3, files=6, size=4000)
    make_tree(tmp_path / "db", seed=4, files=4, size=4000)
    web = register(ext, "cmp-web", tmp_path / "web")
    db = register(ext, "cmp-db", tmp_path / "db")
    group = _group(ext, "cmp-app", [web, db])
    assert group.endswith(":group/cmp-app")
    backup.create_backup_vault(BackupVaultName="groups")

    started = backup.start_backup_job(BackupVaultName="groups", ResourceArn=group, IamRoleArn=ROLE)
    assert started["IsParent"] is True
    job = poll(
        lambda: backup.describe_backup_job(BackupJobId=started["BackupJobId"]),
        "State",
        FINAL_BACKUP,
    )
    assert (job["State"], job["IsParent"], job["ResourceType"]) == ("COMPLETED", True, "Composite")
    assert (job["NumberOfChildJobs"], job["ChildJobsInState"]) == (2, {"COMPLETED": 2})
    kids = backup.list_backup_jobs(ByParentJobId=job["BackupJobId"])["BackupJobs"]
    assert sorted(k["ResourceArn"] for k in kids) == sorted([web, db])
    assert {(k["ParentJobId"], k["IsParent"]) for k in kids} == {(job["BackupJobId"], False)}

    parent_arn = job["RecoveryPointArn"]
    parent = backup.describe_recovery_point(BackupVaultName="groups", RecoveryPointArn=parent_arn)
    assert (parent["IsParent"], parent["Status"]) == (True, "COMPLETED")
    nested = backup.list_recovery_points_by_backup_vault(
        BackupVaultName="groups", ByParentRecoveryPointArn=parent_arn
    )["RecoveryPoints"]
    by_member = {p["CompositeMemberIdentifier"]: p for p in nested}
    assert sorted(by_member) == ["directory/cmp-db", "directory/cmp-web"]
    assert {p["ParentRecoveryPointArn"] for p in nested} == {parent_arn}
    assert {p["RecoveryPointArn"] for p in nested} == {k["RecoveryPointArn"] for k in kids}

    defaults = backup.get_recovery_point_restore_metadata(
        BackupVaultName="groups", RecoveryPointArn=parent_arn
    )["RestoreMetadata"]
    assert defaults["directory/cmp-web.targetPath"] == str(tmp_path / "web")
    restore = backup.start_restore_job(
        RecoveryPointArn=parent_arn,
        Metadata={"directory/cmp-web.targetPath": str(tmp_path / "back")},
        IamRoleArn=ROLE,
    )
    done = poll(
        lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
    )
    assert (done["Status"], done["IsParent"]) == ("COMPLETED", True), done
    child_restores = backup.list_restore_jobs(ByParentJobId=restore["RestoreJobId"])
    assert [(j["Status"], j["ParentJobId"]) for j in child_restores["RestoreJobs"]] == [
        ("COMPLETED", restore["RestoreJobId"])
    ]
    assert not filecmp.dircmp(tmp_path / "web", tmp_path / "back").diff_files
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted(
        p.name for p in (tmp_path / "web").iterdir()
    )

    child_arn = by_member["directory/cmp-db"]["RecoveryPointArn"]
    delete = backup.delete_recovery_point
    assert code_of(delete, BackupVaultName="groups", RecoveryPointArn=child_arn) == (
        "InvalidRequestException",
        400,
    )
    backup.disassociate_recovery_point_from_parent(
        BackupVaultName="groups", RecoveryPointArn=child_arn
    )
    alone = backup.describe_recovery_point(BackupVaultName="groups", RecoveryPointArn=child_arn)
    assert "ParentRecoveryPointArn" not in alone and alone["IsParent"] is False
    delete(BackupVaultName="groups", RecoveryPointArn=child_arn)  # on its own now
    delete(BackupVaultName="groups", RecoveryPointArn=parent_arn)
    left = backup.list_recovery_points_by_backup_vault(BackupVaultName="groups")
    assert left["RecoveryPoints"] == []


def test_a_group_refuses_a_group_or_an_unknown_member(
    snowvault_server: ServerProcess, ext: ExtCall, tmp_path: Path
) -> None:
    (tmp_path / "x").mkdir()
    x = register(ext, "cmp-x", tmp_path / "x")
    inner = _group(ext, "cmp-inner", [x])
    for members in ([inner], [x.replace("cmp-x", "cmp-nobody")]):
        resp = snowvault_server.signed(
            "POST",
            "/_snowvault/v1/RegisterResource",
            json.dumps(
                {
                    "ResourceType": "Composite",
                    "Name": "cmp-bad",
                    "Source": "group:cmp-bad",
                    "Properties": {"members": json.dumps(members)},
                }
            ).encode(),
            **{"Content-Type": "application/json"},
        )
        assert resp.status == 400, resp.data
        assert json.loads(resp.data)["__type"].endswith("InvalidParameterValueException")
