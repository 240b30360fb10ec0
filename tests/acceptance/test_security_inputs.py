"""Limits before work, over HTTP: oversized tags, absurd schedules, unbounded selections
and overflowing numbers get a 4xx with AWS's error shape and change nothing.

Each case failed before the limits landed (a 300-character tag value and 51 tags were
stored, ``rate(99999999999999999 days)`` answered 500). boto3 signs with the wall clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/backup"


def _refused(
    call: Any,
    *args: Any,
    codes: tuple[str, ...] = ("InvalidParameterValueException",),
    **kwargs: Any,
) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    response: dict[str, Any] = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    assert response["Error"]["Code"] in codes, response
    return response


# A JSON integer outside 64 bits is refused by the transport before the model sees it
# (SerializationException, as AWS's JSON reader); one inside 64 bits but outside the
# member's range by the model check (InvalidParameterValueException).
_NUMBER_CODES = ("SerializationException", "InvalidParameterValueException")


def _plan(rule: dict[str, Any]) -> dict[str, Any]:
    return {"BackupPlanName": "limits", "Rules": [{"RuleName": "r", **rule}]}


def test_oversized_tags_are_refused_and_nothing_is_created(backup: Any) -> None:
    cases = [
        ({"k": "v" * 300}, "256"),
        ({"k" * 129: "v"}, "128"),
        ({"aws:owner": "me"}, "reserved prefix 'aws:'"),
        ({f"t{i}": "v" for i in range(51)}, "50"),
    ]
    for tags, needle in cases:
        response = _refused(
            backup.create_backup_vault, BackupVaultName="tagged", BackupVaultTags=tags
        )
        message = response["Error"]["Message"]
        assert "BackupVaultTags" in message and needle in message, message
        assert message.startswith("1 validation error detected: Value ")
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert "tagged" not in names


def test_tag_resource_counts_the_tags_already_there(backup: Any) -> None:
    arn = backup.create_backup_vault(BackupVaultName="counted")["BackupVaultArn"]
    backup.tag_resource(ResourceArn=arn, Tags={f"old{i}": "v" for i in range(45)})
    response = _refused(
        backup.tag_resource, ResourceArn=arn, Tags={f"new{i}": "v" for i in range(6)}
    )
    assert "at most 50 tags" in response["Error"]["Message"]
    assert len(backup.list_tags(ResourceArn=arn)["Tags"]) == 45
    backup.tag_resource(ResourceArn=arn, Tags={f"new{i}": "v" for i in range(5)})
    backup.tag_resource(ResourceArn=arn, Tags={"old0": "replaced"})  # a key it has: 50 stays
    assert len(backup.list_tags(ResourceArn=arn)["Tags"]) == 50
    _refused(backup.tag_resource, ResourceArn=arn, Tags={"aws:x": "1"})
    _refused(backup.tag_resource, ResourceArn=arn, Tags={"k": "v" * 257})


def test_recovery_point_tags_in_a_rule_are_bounded(backup: Any) -> None:
    rule = {"TargetBackupVaultName": "Default", "RecoveryPointTags": {"k": "v" * 300}}
    response = _refused(backup.create_backup_plan, BackupPlan=_plan(rule))
    assert "BackupPlan.Rules[0].RecoveryPointTags.k" in response["Error"]["Message"]
    _refused(
        backup.create_backup_plan,
        BackupPlan=_plan({"TargetBackupVaultName": "Default"}),
        BackupPlanTags={"aws:x": "1"},
    )


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"ScheduleExpression": "rate(99999999999999999 days)"}, "at most 100 years"),
        ({"ScheduleExpression": "rate(36501 days)"}, "at most 100 years"),
        ({"ScheduleExpression": "cron(0 5 ? * * 99999999999999999999)"}, "year"),
        ({"ScheduleExpression": "cron(0 5 \u00b2 * ? *)"}, "day-of-month"),
        ({"ScheduleExpressionTimezone": "../../../../etc/passwd"}, "unknown time zone"),
        ({"ScheduleExpressionTimezone": "x" * 5000}, "unknown time zone"),
        ({"StartWindowMinutes": 2**63}, ""),
        ({"CompletionWindowMinutes": -(2**63) - 1}, ""),
        ({"Lifecycle": {"DeleteAfterDays": 10**30}}, ""),
        ({"StartWindowMinutes": 2**62}, ""),  # fits 64 bits, not the window rule
    ],
)
def test_absurd_schedules_and_numbers_are_400_not_500(
    backup: Any, rule: dict[str, Any], needle: str
) -> None:
    plan = _plan({"TargetBackupVaultName": "Default", **rule})
    codes = _NUMBER_CODES if not needle else ("InvalidParameterValueException",)
    response = _refused(backup.create_backup_plan, BackupPlan=plan, codes=codes)
    assert needle in response["Error"]["Message"]
    assert len(response["Error"]["Message"]) < 400


def test_update_backup_plan_refuses_an_overflowing_rate(backup: Any) -> None:
    plan = backup.create_backup_plan(BackupPlan=_plan({"TargetBackupVaultName": "Default"}))
    bad = _plan(
        {"TargetBackupVaultName": "Default", "ScheduleExpression": "rate(99999999999999999 days)"}
    )
    _refused(backup.update_backup_plan, BackupPlanId=plan["BackupPlanId"], BackupPlan=bad)
    got = backup.get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]
    assert got["Rules"][0]["ScheduleExpression"] == "cron(0 5 ? * * *)"


def test_selections_take_500_arns_and_no_more(backup: Any) -> None:
    # another name: the same plan document twice is AlreadyExistsException, as on AWS
    doc = dict(_plan({"TargetBackupVaultName": "Default"}), BackupPlanName="limits-selections")
    plan_id = backup.create_backup_plan(BackupPlan=doc)["BackupPlanId"]
    arns = [f"arn:aws:snowvault:us-east-1:123456789012:directory/d{i}" for i in range(501)]
    for member in ("Resources", "NotResources"):
        selection = {"SelectionName": "s", "IamRoleArn": ROLE, member: arns}
        response = _refused(
            backup.create_backup_selection, BackupPlanId=plan_id, BackupSelection=selection
        )
        assert f"BackupSelection.{member}" in response["Error"]["Message"]
    wild = [f"arn:aws:snowvault:us-east-1:123456789012:directory/w{i}*" for i in range(31)]
    _refused(
        backup.create_backup_selection,
        BackupPlanId=plan_id,
        BackupSelection={"SelectionName": "w", "IamRoleArn": ROLE, "Resources": wild},
    )
    tags = [{"ConditionType": "STRINGEQUALS", "ConditionKey": "k", "ConditionValue": "v"}] * 31
    _refused(
        backup.create_backup_selection,
        BackupPlanId=plan_id,
        BackupSelection={"SelectionName": "t", "IamRoleArn": ROLE, "ListOfTags": tags},
    )
    ok = {"SelectionName": "ok", "IamRoleArn": ROLE, "Resources": arns[:500]}
    backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection=ok)
    listed = backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"]
    assert [s["SelectionName"] for s in listed] == ["ok"]


def test_extension_tags_follow_the_same_rules(
    snowvault_server: Any, ext: Any, tmp_path: Path
) -> None:
    def call(action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = snowvault_server.signed(
            "POST",
            f"/_snowvault/v1/{action}",
            json.dumps(body).encode(),
            **{"Content-Type": "application/json"},
        )
        return resp.status, json.loads(resp.data or b"{}")

    src = {"ResourceType": "Directory", "Name": "limits-src", "Source": str(tmp_path)}
    status, doc = call("RegisterResource", {**src, "Tags": {"k": "v" * 300}})
    assert (status, doc["__type"]) == (400, "InvalidParameterValueException"), doc
    assert "256" in doc["message"]
    status, doc = call("RegisterResource", {**src, "Tags": {"aws:k": "v"}})
    assert (status, doc["__type"]) == (400, "InvalidParameterValueException"), doc
    arn = ext("RegisterResource", {**src, "Tags": {f"t{i}": "v" for i in range(48)}})["ResourceArn"]
    status, doc = call("TagResource", {"ResourceArn": arn, "Tags": {"a": "1", "b": "2", "c": "3"}})
    assert (status, doc["__type"]) == (400, "InvalidParameterValueException"), doc
    assert "at most 50 tags" in doc["message"]
    ext("TagResource", {"ResourceArn": arn, "Tags": {"a": "1", "b": "2"}})
    assert len(ext("DescribeResource", {"ResourceArn": arn})["Tags"]) == 50
