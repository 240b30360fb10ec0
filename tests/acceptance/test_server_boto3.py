"""The server as AWS Backup clients see it: the real boto3 client against a real
`snowvault server` subprocess, the whole story and the ways a request can be wrong."""

from __future__ import annotations

import filecmp
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.exceptions import ClientError

from helpers.stories import (
    FINAL_BACKUP,
    FINAL_RESTORE,
    ROLE,
    backed_up,
    code_of,
    make_tree,
    poll,
    register,
)
from helpers.sv_server import ExtCall, ServerProcess


def test_whole_story(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    total = make_tree(source, seed=1)
    account = snowvault_server.creds["account_id"]
    vault = backup.create_backup_vault(BackupVaultName="story", BackupVaultTags={"env": "test"})
    assert vault["BackupVaultArn"] == f"arn:aws:backup:us-east-1:{account}:backup-vault:story"
    arn = register(ext, "story-src", source)
    assert arn == f"arn:aws:snowvault:us-east-1:{account}:directory/story-src"

    job = backed_up(backup, "story", arn)
    assert job["State"] == "COMPLETED", job
    assert job["PercentDone"] == "100.0"
    assert job["BytesTransferred"] == total == job["BackupSizeInBytes"]
    assert job["StartBy"] > job["CreationDate"]
    rp_arn = job["RecoveryPointArn"]

    listed = backup.list_recovery_points_by_backup_vault(BackupVaultName="story")["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in listed] == [rp_arn]
    by_resource = backup.list_recovery_points_by_resource(ResourceArn=arn)["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in by_resource] == [rp_arn]
    point = backup.describe_recovery_point(BackupVaultName="story", RecoveryPointArn=rp_arn)
    assert (point["Status"], point["StorageClass"], point["IsEncrypted"]) == (
        "COMPLETED",
        "WARM",
        True,
    )
    assert point["ResourceArn"] == arn and point["BackupSizeInBytes"] == total
    assert point["EncryptionKeyArn"].startswith(f"arn:aws:kms:us-east-1:{account}:key/")
    described = backup.describe_backup_vault(BackupVaultName="story")
    assert described["NumberOfRecoveryPoints"] == 1
    assert described["EncryptionKeyArn"] == point["EncryptionKeyArn"]
    protected = backup.describe_protected_resource(ResourceArn=arn)
    assert protected["LastRecoveryPointArn"] == rp_arn

    contents = ext("ListRecoveryPointContents", {"RecoveryPointArn": rp_arn, "Recursive": True})
    paths = {e["Path"] for e in contents["Entries"]}
    assert "/d0/f0.bin" in paths and "/empty.txt" in paths

    target = tmp_path / "restored"
    restore = backup.start_restore_job(
        RecoveryPointArn=rp_arn, Metadata={"targetPath": str(target)}, IamRoleArn=ROLE
    )
    done = poll(
        lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
    )
    assert done["Status"] == "COMPLETED", done
    assert done["PercentDone"] == "100.0"
    compared = filecmp.dircmp(source, target)
    assert not compared.left_only and not compared.right_only and not compared.diff_files
    for path in source.rglob("*.bin"):
        assert (target / path.relative_to(source)).read_bytes() == path.read_bytes()

    code, status = code_of(backup.delete_backup_vault, BackupVaultName="story")
    assert (code, status) == ("InvalidRequestException", 400)

    backup.delete_recovery_point(BackupVaultName="story", RecoveryPointArn=rp_arn)
    backup.delete_backup_vault(BackupVaultName="story")
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert "story" not in names


def test_restore_items_and_refused_targets(backup: Any, ext: ExtCall, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source, seed=2, files=8)
    backup.create_backup_vault(BackupVaultName="items")
    job = backed_up(backup, "items", register(ext, "items-src", source))
    rp_arn = job["RecoveryPointArn"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    code, _ = code_of(
        backup.start_restore_job,
        RecoveryPointArn=rp_arn,
        Metadata={"targetPath": str(busy)},
        IamRoleArn=ROLE,
    )
    assert code == "InvalidParameterValueException"
    assert (busy / "x").read_text() == "keep me"

    target = tmp_path / "some"
    restore = backup.start_restore_job(
        RecoveryPointArn=rp_arn,
        Metadata={"targetPath": str(target), "items": json.dumps(["/d1"])},
        IamRoleArn=ROLE,
    )
    done = poll(
        lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
    )
    assert done["Status"] == "COMPLETED", done
    assert sorted(p.name for p in target.iterdir()) == ["d1"]
    meta = backup.get_restore_job_metadata(RestoreJobId=restore["RestoreJobId"])["Metadata"]
    assert meta["targetPath"] == str(target)


def test_aws_errors_are_clear_4xx(backup: Any, snowvault_server: ServerProcess) -> None:
    backup.create_backup_vault(BackupVaultName="keep-me")
    # AWS's answer for a vault that does not exist (Ansible's backup_vault relies on it)
    assert code_of(backup.describe_backup_vault, BackupVaultName="missing") == (
        "AccessDeniedException",
        403,
    )
    assert code_of(backup.delete_backup_vault, BackupVaultName="missing") == (
        "ResourceNotFoundException",
        400,
    )
    code, status = code_of(backup.create_backup_vault, BackupVaultName="bad name!")
    assert code in ("ValidationException", "InvalidParameterValueException") and status == 400
    assert code_of(backup.create_backup_vault, BackupVaultName="keep-me") == (
        "AlreadyExistsException",
        400,
    )
    code, status = code_of(
        backup.start_backup_job,
        BackupVaultName="keep-me",
        ResourceArn="arn:aws:snowvault:us-east-1:123456789012:directory/none",
        IamRoleArn=ROLE,
    )
    assert (code, status) == ("ResourceNotFoundException", 400)
    code, status = code_of(backup.describe_backup_job, BackupJobId="no-such-job")
    assert (code, status) == ("ResourceNotFoundException", 400)
    code, status = code_of(backup.list_frameworks)  # Audit Manager: not implemented yet
    assert 400 <= status < 500 and code == "UnknownOperationException"
    other_region = snowvault_server.client(region="eu-west-3")
    with pytest.raises(ClientError) as info:
        other_region.list_backup_vaults()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "eu-west-3" in info.value.response["Error"]["Message"]
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert "keep-me" in names  # nothing lost on the way


def test_authentication_errors(snowvault_server: ServerProcess, monkeypatch: Any) -> None:
    wrong_secret = snowvault_server.client(secret="x" * 40)
    code, status = code_of(wrong_secret.list_backup_vaults)
    assert status == 403 and code in ("SignatureDoesNotMatch", "InvalidSignatureException")
    unknown = snowvault_server.client(key="AKIAUNKNOWN000000000")
    code, status = code_of(unknown.list_backup_vaults)
    assert status == 403 and code in ("UnrecognizedClientException", "InvalidClientTokenId")

    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda *a, **k: real_now(*a, **k) - timedelta(hours=1),
    )
    stale = snowvault_server.client()
    code, status = code_of(stale.list_backup_vaults)
    assert status in (400, 403) and code in ("InvalidSignatureException", "RequestExpired")


def test_malformed_requests(snowvault_server: ServerProcess) -> None:
    resp = snowvault_server.signed(
        "PUT",
        "/backup-vaults/jsonless",
        b"{not json",
        service="backup",
        **{"Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert json.loads(resp.data)["__type"] == "SerializationException"
    assert resp.headers["x-amzn-ErrorType"].startswith("SerializationException")
    resp = snowvault_server.signed("GET", "/no/such/route", b"", service="backup")
    assert 400 <= resp.status < 500
    resp = snowvault_server.signed(
        "POST", "/_snowvault/v1/RegisterResource", b"[1, 2", **{"Content-Type": "application/json"}
    )
    assert resp.status == 400 and json.loads(resp.data)["__type"] == "SerializationException"
    resp = snowvault_server.signed("POST", "/_snowvault/v1/NoSuchAction", b"{}")
    assert resp.status == 400 and json.loads(resp.data)["__type"] == "UnknownOperationException"


def test_extension_resources(ext: ExtCall, snowvault_server: ServerProcess, tmp_path: Path) -> None:
    arn = register(ext, "ext-src", tmp_path)
    ext("TagResource", {"ResourceArn": arn, "Tags": {"team": "a", "env": "x"}})
    ext("UntagResource", {"ResourceArn": arn, "TagKeys": ["env"]})
    doc = ext("DescribeResource", {"ResourceArn": arn})
    assert doc["Tags"] == {"team": "a"} and doc["Source"] == str(tmp_path)
    listed = ext("ListResources", {"ResourceType": "Directory"})["Resources"]
    assert arn in [r["ResourceArn"] for r in listed]
    for body in (
        {"ResourceType": "Directory", "Name": "rel", "Source": "relative/path"},
        {"ResourceType": "Bucket", "Name": "b", "Source": str(tmp_path)},
        {"ResourceType": "Directory", "Name": "ext-src", "Source": str(tmp_path)},
    ):
        resp = snowvault_server.signed(
            "POST", "/_snowvault/v1/RegisterResource", json.dumps(body).encode()
        )
        assert resp.status == 400, resp.data
        assert json.loads(resp.data)["__type"] in (
            "InvalidParameterValueException",
            "AlreadyExistsException",
        )
    ext("DeregisterResource", {"ResourceArn": arn})
    resp = snowvault_server.signed(
        "POST", "/_snowvault/v1/DescribeResource", json.dumps({"ResourceArn": arn}).encode()
    )
    assert resp.status == 400 and json.loads(resp.data)["__type"] == "ResourceNotFoundException"


def test_tags_lifecycle_and_settings(backup: Any, ext: ExtCall, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", seed=3, files=3)
    vault_arn = backup.create_backup_vault(BackupVaultName="tagged")["BackupVaultArn"]
    backup.tag_resource(ResourceArn=vault_arn, Tags={"a": "1", "b": "2"})
    backup.untag_resource(ResourceArn=vault_arn, TagKeyList=["b"])
    assert backup.list_tags(ResourceArn=vault_arn)["Tags"] == {"a": "1"}
    job = backed_up(backup, "tagged", register(ext, "tagged-src", tmp_path / "src"))
    rp_arn = job["RecoveryPointArn"]
    updated = backup.update_recovery_point_lifecycle(
        BackupVaultName="tagged", RecoveryPointArn=rp_arn, Lifecycle={"DeleteAfterDays": 30}
    )
    assert updated["CalculatedLifecycle"]["DeleteAt"] > job["CreationDate"]
    types = backup.get_supported_resource_types()["ResourceTypes"]
    assert types[0] == "Directory"  # the other built-in types follow
    opt_in = backup.describe_region_settings()["ResourceTypeOptInPreference"]
    assert opt_in == dict.fromkeys(types, True)
    jobs = backup.list_backup_jobs(ByBackupVaultName="tagged", ByState="COMPLETED")["BackupJobs"]
    assert [j["BackupJobId"] for j in jobs] == [job["BackupJobId"]]
    summaries = backup.list_backup_job_summaries()["BackupJobSummaries"]
    assert any(s["State"] == "COMPLETED" and s["Count"] >= 1 for s in summaries)


def test_stop_waiting_job_is_aborted(backup: Any, ext: ExtCall, tmp_path: Path) -> None:
    make_tree(tmp_path / "s", seed=4, files=2)
    backup.create_backup_vault(BackupVaultName="stopper")
    arn = register(ext, "stop-src", tmp_path / "s")
    job = backup.start_backup_job(BackupVaultName="stopper", ResourceArn=arn, IamRoleArn=ROLE)
    try:
        backup.stop_backup_job(BackupJobId=job["BackupJobId"])
    except ClientError as exc:  # it may have finished already: then stopping is refused
        assert exc.response["Error"]["Code"] == "InvalidRequestException"
    final = poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]), "State", FINAL_BACKUP
    )
    assert final["State"] in ("ABORTED", "COMPLETED")


def test_reset_keeps_only_the_root_account(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    backup.create_backup_vault(BackupVaultName="wiped")
    register(ext, "wiped-src", tmp_path)
    snowvault_server.reset()
    # only AWS's Default vault, which the first listing makes again (as on AWS)
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert names == ["Default"]
    assert ext("ListResources", {})["Resources"] == []
    backup.create_backup_vault(BackupVaultName="wiped")  # the same name is free again
