"""The AWS answers that Ansible's amazon.aws backup modules depend on, checked with boto3
and the CLI against a real server (fast; test_ansible.py runs the modules themselves).

- A vault that does not exist: DescribeBackupVault and ListRecoveryPointsByBackupVault
  answer 403 AccessDeniedException "Insufficient privileges to perform this action." (the
  module ``backup_vault`` creates a vault only after that answer); other operations keep
  ResourceNotFoundException, and the CLI still tells a human the vault was not found.
- GetBackupSelection returns the empty lists and the four empty Conditions lists.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.stories import sv
from helpers.sv_server import ServerProcess

HIDDEN = "Insufficient privileges to perform this action."
ROLE = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"


def _error(call: Any, **params: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as err:
        call(**params)
    response = err.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_a_missing_vault_is_hidden_as_aws_hides_it(backup: Any) -> None:
    assert _error(backup.describe_backup_vault, BackupVaultName="ghost-vault") == (
        "AccessDeniedException",
        403,
        HIDDEN,
    )
    assert _error(backup.list_recovery_points_by_backup_vault, BackupVaultName="ghost-vault") == (
        "AccessDeniedException",
        403,
        HIDDEN,
    )
    # Not every operation hides it: AWS answers these with ResourceNotFoundException.
    code, status, _ = _error(backup.delete_backup_vault, BackupVaultName="ghost-vault")
    assert (code, status) == ("ResourceNotFoundException", 400)
    # And a vault that exists is described and listed as before.
    backup.create_backup_vault(BackupVaultName="seen-vault")
    assert backup.describe_backup_vault(BackupVaultName="seen-vault")["BackupVaultName"] == (
        "seen-vault"
    )
    listed = backup.list_recovery_points_by_backup_vault(BackupVaultName="seen-vault")
    assert listed["RecoveryPoints"] == []


def test_the_cli_says_vault_not_found(snowvault_server: ServerProcess) -> None:
    done = sv(snowvault_server, "vault", "describe", "ghost-vault", ok=False)
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip() == (
        "snowvault: error: vault not found: ghost-vault (it does not exist, or you may not see it)"
    )


def test_get_backup_selection_returns_empty_lists(backup: Any) -> None:
    backup.create_backup_vault(BackupVaultName="sel-vault")
    plan = backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": "sel-plan",
            "Rules": [{"RuleName": "daily", "TargetBackupVaultName": "sel-vault"}],
        }
    )
    plan_id = plan["BackupPlanId"]
    by_tag = backup.create_backup_selection(
        BackupPlanId=plan_id,
        BackupSelection={
            "SelectionName": "by-tag",
            "IamRoleArn": ROLE,
            "ListOfTags": [
                {"ConditionType": "STRINGEQUALS", "ConditionKey": "backup", "ConditionValue": "y"}
            ],
        },
    )
    got = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=by_tag["SelectionId"])
    assert got["BackupSelection"] == {
        "SelectionName": "by-tag",
        "IamRoleArn": ROLE,
        "Resources": [],
        "ListOfTags": [
            {"ConditionType": "STRINGEQUALS", "ConditionKey": "backup", "ConditionValue": "y"}
        ],
        "NotResources": [],
        "Conditions": {
            "StringEquals": [],
            "StringNotEquals": [],
            "StringLike": [],
            "StringNotLike": [],
        },
    }
    conditions = {"StringLike": [{"ConditionKey": "aws:ResourceTag/app", "ConditionValue": "w*"}]}
    by_condition = backup.create_backup_selection(
        BackupPlanId=plan_id,
        BackupSelection={
            "SelectionName": "by-condition",
            "IamRoleArn": ROLE,
            "Resources": ["*"],
            "Conditions": conditions,
        },
    )
    got = backup.get_backup_selection(
        BackupPlanId=plan_id, SelectionId=by_condition["SelectionId"]
    )["BackupSelection"]
    assert got["Resources"] == ["*"] and got["ListOfTags"] == [] and got["NotResources"] == []
    assert got["Conditions"] == {
        "StringEquals": [],
        "StringNotEquals": [],
        "StringLike": conditions["StringLike"],
        "StringNotLike": [],
    }
