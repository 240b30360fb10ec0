"""Issue 10, AWS Backup semantics as boto3 sees them (a real server, wall-clock signing):
AlreadyExistsException members, plan-document duplicates, creation order, target vaults,
CopyActions kept, AWS's Default vault, CreatedResourceArn, sizes, backup-model codes
for a bad vault key, ListBackupJobSummaries per the model, tags on legal holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.stories import (
    FINAL_RESTORE,
    ROLE,
    backed_up,
    code_of,
    make_tree,
    poll,
    register,
    restored,
)
from helpers.sv_server import ExtCall, ServerProcess


def _plan(name: str, vault: str, **rule: Any) -> dict[str, Any]:
    return {
        "BackupPlanName": name,
        "Rules": [
            {
                "RuleName": "daily",
                "TargetBackupVaultName": vault,
                "ScheduleExpression": "cron(0 5 ? * * *)",
                **rule,
            }
        ],
    }


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response  # type: ignore[no-any-return]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- 1. duplicates and AlreadyExistsException members -----------------------------------


def test_same_plan_document_twice_is_already_exists_with_arn_and_request_id(backup: Any) -> None:
    vault = _name("dup")
    backup.create_backup_vault(BackupVaultName=vault)
    doc = _plan(_name("p"), vault)
    first = backup.create_backup_plan(BackupPlan=doc, CreatorRequestId="req-a")
    again = backup.create_backup_plan(BackupPlan=doc, CreatorRequestId="req-a")
    assert again["BackupPlanId"] == first["BackupPlanId"]  # idempotent on the request id
    err = _error(backup.create_backup_plan, BackupPlan=doc, CreatorRequestId="req-b")
    assert err["Error"]["Code"] == "AlreadyExistsException"
    assert err["Arn"] == first["BackupPlanArn"]
    assert err["CreatorRequestId"] == "req-a"
    err = _error(backup.create_backup_plan, BackupPlan=doc)
    assert err["Error"]["Code"] == "AlreadyExistsException"
    # the same name with other rules is another document: accepted, as on AWS
    other = _plan(doc["BackupPlanName"], vault, ScheduleExpression="cron(0 6 ? * * *)")
    assert backup.create_backup_plan(BackupPlan=other)["BackupPlanId"] != first["BackupPlanId"]
    # once deleted, the document is free again
    backup.delete_backup_plan(BackupPlanId=first["BackupPlanId"])
    assert backup.create_backup_plan(BackupPlan=doc)["BackupPlanId"] != first["BackupPlanId"]


def test_existing_vault_is_already_exists_with_arn_and_request_id(backup: Any) -> None:
    vault = _name("v")
    made = backup.create_backup_vault(BackupVaultName=vault, CreatorRequestId="vault-req")
    err = _error(backup.create_backup_vault, BackupVaultName=vault)
    assert err["Error"]["Code"] == "AlreadyExistsException"
    assert err["Arn"] == made["BackupVaultArn"]
    assert err["CreatorRequestId"] == "vault-req"


# --- 2. creation order ----------------------------------------------------------------


def test_list_backup_plans_is_in_creation_order(backup: Any) -> None:
    vault = _name("order")
    backup.create_backup_vault(BackupVaultName=vault)
    made = [backup.create_backup_plan(BackupPlan=_plan(f"{vault}-{i}", vault)) for i in range(4)]
    listed = []
    kwargs: dict[str, Any] = {"MaxResults": 2}
    while True:
        page = backup.list_backup_plans(**kwargs)
        listed += [p["BackupPlanId"] for p in page["BackupPlansList"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    ours = [pid for pid in listed if pid in {m["BackupPlanId"] for m in made}]
    assert ours == [m["BackupPlanId"] for m in made]


# --- 3. target vault and CopyActions -------------------------------------------------------


def test_a_rule_whose_vault_does_not_exist_is_refused(backup: Any) -> None:
    missing = _name("nowhere")
    err = _error(backup.create_backup_plan, BackupPlan=_plan(_name("p"), missing))
    assert err["Error"]["Code"] == "InvalidParameterValueException"
    assert missing in err["Error"]["Message"]
    vault = _name("real")
    backup.create_backup_vault(BackupVaultName=vault)
    plan = backup.create_backup_plan(BackupPlan=_plan(_name("p"), vault))
    err = _error(
        backup.update_backup_plan,
        BackupPlanId=plan["BackupPlanId"],
        BackupPlan=_plan("x", missing),
    )
    assert err["Error"]["Code"] == "InvalidParameterValueException"


def test_copy_actions_are_kept_not_dropped(backup: Any) -> None:
    vault = _name("copy")
    made = backup.create_backup_vault(BackupVaultName=vault)
    copy = [{"DestinationBackupVaultArn": made["BackupVaultArn"]}]
    plan = backup.create_backup_plan(BackupPlan=_plan(_name("p"), vault, CopyActions=copy))
    got = backup.get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]
    assert got["Rules"][0]["CopyActions"] == copy


# --- 4. AWS's Default vault ------------------------------------------------------------------


def test_the_default_vault_exists_and_the_templates_work(backup: Any) -> None:
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert names.count("Default") == 1
    described = backup.describe_backup_vault(BackupVaultName="Default")
    assert described["BackupVaultArn"].endswith(":backup-vault:Default")
    for t in backup.list_backup_plan_templates()["BackupPlanTemplatesList"]:
        doc = backup.get_backup_plan_from_template(BackupPlanTemplateId=t["BackupPlanTemplateId"])[
            "BackupPlanDocument"
        ]
        doc["BackupPlanName"] = _name("tpl")
        assert backup.create_backup_plan(BackupPlan=doc)["BackupPlanId"]


def test_start_backup_job_into_default(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    snowvault_server.reset()  # Default gone: the backup job itself makes it
    make_tree(tmp_path / "src", seed=10, files=3, size=2000)
    arn = register(ext, "into-default", tmp_path / "src")
    job = backed_up(backup, "Default", arn)
    assert job["State"] == "COMPLETED"
    assert job["BackupVaultArn"].endswith(":backup-vault:Default")


# --- 5. CreatedResourceArn and sizes -----------------------------------------------------------


def test_restore_names_the_created_resource_and_sizes_are_the_points(
    backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    vault = _name("sizes")
    backup.create_backup_vault(BackupVaultName=vault)
    src = tmp_path / "data"
    total = make_tree(src, seed=11, files=5, size=3000)
    arn = register(ext, "sized", src)
    first = backed_up(backup, vault, arn)
    assert first["BackupSizeInBytes"] == total
    (src / "extra.bin").write_bytes(b"12345678")  # an incremental: 8 new bytes
    second = backed_up(backup, vault, arn)
    assert second["State"] == "COMPLETED"
    assert second["BackupSizeInBytes"] == total + 8  # the point's data, not the new bytes
    rp = backup.describe_recovery_point(
        BackupVaultName=vault, RecoveryPointArn=second["RecoveryPointArn"]
    )
    assert rp["BackupSizeInBytes"] == total + 8
    by_resource = backup.list_recovery_points_by_resource(ResourceArn=arn)["RecoveryPoints"]
    sizes = {p["RecoveryPointArn"]: p["BackupSizeBytes"] for p in by_resource}
    assert sizes == {first["RecoveryPointArn"]: total, second["RecoveryPointArn"]: total + 8}
    by_vault = backup.list_recovery_points_by_backup_vault(BackupVaultName=vault)
    assert {p["BackupSizeInBytes"] for p in by_vault["RecoveryPoints"]} == {total, total + 8}

    target = tmp_path / "restored"
    done = restored(backup, second["RecoveryPointArn"], target)
    assert done["Status"] == "COMPLETED"
    account = arn.split(":")[4]
    region = arn.split(":")[3]
    assert done["CreatedResourceArn"] == (
        f"arn:aws:snowvault:{region}:{account}:directory{target.resolve()}"
    )
    # restored over the registered source: the created resource is that resource
    back = backup.start_restore_job(
        RecoveryPointArn=second["RecoveryPointArn"],
        Metadata={"targetPath": str(src.resolve()), "overwrite": "true"},
        IamRoleArn=ROLE,
    )
    job = poll(
        lambda: backup.describe_restore_job(RestoreJobId=back["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
    )
    assert job["Status"] == "COMPLETED"
    assert job["CreatedResourceArn"] == arn


# --- 6. backup-model codes for a bad vault key ------------------------------------------------


def test_a_bad_encryption_key_gets_backup_model_codes(backup: Any) -> None:
    default = backup.describe_backup_vault(BackupVaultName="Default")["BackupVaultArn"]
    region, account = default.split(":")[3:5]
    for key in (f"arn:aws:kms:{region}:{account}:key/{uuid.uuid4()}", "alias/no-such-alias"):
        err = _error(backup.create_backup_vault, BackupVaultName=_name("k"), EncryptionKeyArn=key)
        assert err["Error"]["Code"] == "InvalidParameterValueException", key
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "EncryptionKeyArn" in err["Error"]["Message"]


# --- 7. ListBackupJobSummaries --------------------------------------------------------------------


def test_job_summaries_per_the_model(backup: Any, ext: ExtCall, tmp_path: Path) -> None:
    vault = _name("sum")
    backup.create_backup_vault(BackupVaultName=vault)
    for i in range(2):
        make_tree(tmp_path / f"s{i}", seed=20 + i, files=2, size=500)
        assert backed_up(backup, vault, register(ext, f"sum-{i}", tmp_path / f"s{i}"))
    account = backup.describe_backup_vault(BackupVaultName=vault)["BackupVaultArn"].split(":")[4]
    now = datetime.now(UTC)

    daily = backup.list_backup_job_summaries(AggregationPeriod="ONE_DAY", State="COMPLETED")
    assert daily["AggregationPeriod"] == "ONE_DAY"
    rows = daily["BackupJobSummaries"]
    assert rows and all(r["State"] == "COMPLETED" for r in rows)
    for r in rows:  # one row per UTC day: a day long, or today's up to now
        assert r["EndTime"] - r["StartTime"] <= timedelta(days=1)
        assert r["StartTime"] >= now - timedelta(days=15)

    total = backup.list_backup_job_summaries(
        AggregationPeriod="FOURTEEN_DAYS",
        State="AGGREGATE_ALL",
        ResourceType="AGGREGATE_ALL",
        MessageCategory="AGGREGATE_ALL",
        AccountId=account,
    )["BackupJobSummaries"]
    assert len(total) == 1
    assert total[0]["State"] == "AGGREGATE_ALL"
    assert total[0]["ResourceType"] == "AGGREGATE_ALL"
    assert total[0]["AccountId"] == account
    assert total[0]["Count"] >= 2

    per_state = backup.list_backup_job_summaries(
        AggregationPeriod="SEVEN_DAYS", State="ANY", ResourceType="AGGREGATE_ALL"
    )["BackupJobSummaries"]
    assert sum(r["Count"] for r in per_state) == total[0]["Count"]
    assert {r["ResourceType"] for r in per_state} == {"AGGREGATE_ALL"}
    assert "COMPLETED" in {r["State"] for r in per_state}

    pages, kwargs = [], {"AggregationPeriod": "SEVEN_DAYS", "MaxResults": 1}
    while True:
        page = backup.list_backup_job_summaries(**kwargs)
        pages.append(page["BackupJobSummaries"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert all(len(p) <= 1 for p in pages)
    whole = backup.list_backup_job_summaries(AggregationPeriod="SEVEN_DAYS")["BackupJobSummaries"]
    assert [r for p in pages for r in p] == whole
    assert code_of(backup.list_backup_job_summaries, NextToken="not-a-token") == (
        "InvalidParameterValueException",
        400,
    )


# --- 8. tags on legal holds --------------------------------------------------------------


def test_legal_holds_take_tags(backup: Any) -> None:
    vault = _name("held")
    backup.create_backup_vault(BackupVaultName=vault)
    hold = backup.create_legal_hold(
        Title="audit",
        Description="keep",
        RecoveryPointSelection={"VaultNames": [vault]},
        Tags={"case": "42"},
    )
    arn = hold["LegalHoldArn"]
    assert backup.list_tags(ResourceArn=arn)["Tags"] == {"case": "42"}
    backup.tag_resource(ResourceArn=arn, Tags={"team": "legal"})
    assert backup.list_tags(ResourceArn=arn)["Tags"] == {"case": "42", "team": "legal"}
    backup.untag_resource(ResourceArn=arn, TagKeyList=["case"])
    assert backup.list_tags(ResourceArn=arn)["Tags"] == {"team": "legal"}
    unknown = arn.rsplit(":", 1)[0] + ":" + str(uuid.uuid4())
    assert code_of(backup.list_tags, ResourceArn=unknown) == ("ResourceNotFoundException", 400)
