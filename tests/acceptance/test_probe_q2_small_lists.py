"""ListBackupPlanTemplates, ListTags and ListRecoveryPointsByLegalHold page as the model
says (MaxResults, NextToken) through boto3 and its paginators (helper Q's newcomer
probe: the three ignored MaxResults and answered one page); a NextToken this server did
not issue, or one of another list, answers 400.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers import stories
from helpers.sv_server import ExtCall

VAULT_TAGS = {f"k{i}": f"v{i}" for i in range(5)}


def _all(backup: Any, op: str, key: str, **params: Any) -> list[Any]:
    pages = backup.get_paginator(op).paginate(**params, PaginationConfig={"PageSize": 2})
    out: list[Any] = []
    for page in pages:
        got = page[key]
        assert len(got) <= 2
        out += list(got.items()) if isinstance(got, dict) else got
    return out


def test_plan_templates_page(backup: Any) -> None:
    whole = backup.list_backup_plan_templates()["BackupPlanTemplatesList"]
    first = backup.list_backup_plan_templates(MaxResults=1)
    assert len(first["BackupPlanTemplatesList"]) == 1 and first["NextToken"]
    paged = _all(backup, "list_backup_plan_templates", "BackupPlanTemplatesList")
    assert sorted(t["BackupPlanTemplateId"] for t in paged) == sorted(
        t["BackupPlanTemplateId"] for t in whole
    )
    assert len(paged) == len(whole) >= 3


def test_tags_page(backup: Any) -> None:
    arn = backup.create_backup_vault(BackupVaultName="tagged", BackupVaultTags=VAULT_TAGS)[
        "BackupVaultArn"
    ]
    first = backup.list_tags(ResourceArn=arn, MaxResults=2)
    assert len(first["Tags"]) == 2 and first["NextToken"]
    tags, token = dict(first["Tags"]), first["NextToken"]
    while token:  # botocore ships no ListTags paginator
        page = backup.list_tags(ResourceArn=arn, MaxResults=2, NextToken=token)
        assert len(page["Tags"]) <= 2 and not set(page["Tags"]) & set(tags)
        tags, token = tags | page["Tags"], page.get("NextToken")
    assert tags == VAULT_TAGS


def test_legal_hold_points_page(backup: Any, ext: ExtCall, tmp_path: Path) -> None:
    stories.make_tree(tmp_path / "src", seed=7, files=3, size=100)
    arn = ext(
        "RegisterResource",
        {"ResourceType": "Directory", "Name": "held", "Source": str(tmp_path / "src")},
    )["ResourceArn"]
    backup.create_backup_vault(BackupVaultName="held")
    points = {stories.backed_up(backup, "held", arn)["RecoveryPointArn"] for _ in range(3)}
    hold = backup.create_legal_hold(
        Title="probe",
        Description="pages",
        RecoveryPointSelection={"VaultNames": ["held"]},
    )["LegalHoldId"]
    first = backup.list_recovery_points_by_legal_hold(LegalHoldId=hold, MaxResults=1)
    assert len(first["RecoveryPoints"]) == 1 and first["NextToken"]
    paged = _all(backup, "list_recovery_points_by_legal_hold", "RecoveryPoints", LegalHoldId=hold)
    assert {p["RecoveryPointArn"] for p in paged} == points and len(paged) == 3


def _forged(kind: str, values: list[Any]) -> str:
    raw = json.dumps({"k": kind, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        _forged("tags", ["k1"]),  # another list's
        _forged("plan-templates", [5]),
        _forged("plan-templates", ["a", "b"]),
        _forged("plan-templates", [{"x": 1}]),
    ],
)
def test_a_forged_token_is_400(backup: Any, token: str) -> None:
    with pytest.raises(ClientError) as info:
        backup.list_backup_plan_templates(NextToken=token)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_too_many_results_is_400(backup: Any) -> None:
    with pytest.raises(ClientError) as info:
        backup.list_backup_plan_templates(MaxResults=1001)
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
