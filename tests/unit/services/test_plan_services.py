"""Plans and selections through the services: versions, rule ids, deletion, templates,
selection preview."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snowvault.control.services import plans, resources, selections, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/backup"


def daily(name: str = "daily", **extra: Any) -> dict[str, Any]:
    rule = {
        "RuleName": "nightly",
        "TargetBackupVaultName": "main",
        "ScheduleExpression": "cron(0 5 ? * * *)",
        "Lifecycle": {"DeleteAfterDays": 35},
        **extra,
    }
    return {"BackupPlanName": name, "Rules": [rule]}


def tagged(name: str = "tagged", key: str = "Backup", value: str = "true") -> dict[str, Any]:
    return {
        "SelectionName": name,
        "IamRoleArn": ROLE,
        "ListOfTags": [
            {"ConditionType": "STRINGEQUALS", "ConditionKey": key, "ConditionValue": value}
        ],
    }


@pytest.fixture(autouse=True)
def main_vault(deps: Deps, caller: Caller) -> None:
    """The vault the plans target (a rule's target vault must exist)."""
    vaults.create(deps, caller, "main")


def test_create_fills_defaults_and_rule_ids(deps: Deps, caller: Caller) -> None:
    plan = plans.create(deps, caller, daily(), tags={"team": "ops"})
    got = plans.get(deps, caller, plan["backup_plan_id"])
    rule = got["document"]["Rules"][0]
    assert rule["StartWindowMinutes"] == 480
    assert rule["CompletionWindowMinutes"] == 10080
    assert rule["ScheduleExpressionTimezone"] == "UTC"
    assert len(rule["RuleId"]) == 36
    assert got["arn"].endswith(f":backup-plan:{plan['backup_plan_id']}")


def test_creator_request_id_returns_the_same_plan(deps: Deps, caller: Caller) -> None:
    first = plans.create(deps, caller, daily(), creator_request_id="req-1")
    again = plans.create(deps, caller, daily(), creator_request_id="req-1")
    assert again["backup_plan_id"] == first["backup_plan_id"]


def test_validation_error_names_the_field(deps: Deps, caller: Caller) -> None:
    with pytest.raises(InvalidInput) as info:
        plans.create(deps, caller, daily(StartWindowMinutes=30))
    assert info.value.fields["field"] == "StartWindowMinutes"


def test_continuous_backup_keeps_1_to_35_days_as_on_aws(deps: Deps, caller: Caller) -> None:
    plan = plans.create(deps, caller, daily(EnableContinuousBackup=True))  # 35 days
    rule = plans.get(deps, caller, plan["backup_plan_id"])["document"]["Rules"][0]
    assert rule["EnableContinuousBackup"] is True
    longer = daily("longer", EnableContinuousBackup=True, Lifecycle={"DeleteAfterDays": 36})
    with pytest.raises(InvalidInput, match="1 to 35 days"):
        plans.create(deps, caller, longer)


def test_update_makes_a_new_version_and_keeps_rule_ids(
    deps: Deps, caller: Caller, clock: FakeClock
) -> None:
    plan = plans.create(deps, caller, daily())
    pid, v1 = plan["backup_plan_id"], plan["version_id"]
    rule_id = plans.get(deps, caller, pid)["document"]["Rules"][0]["RuleId"]
    clock.advance(60)
    updated = plans.update(
        deps, replace(caller, now=clock.now()), pid, daily(ScheduleExpression="cron(0 6 ? * * *)")
    )
    assert updated["version_id"] != v1
    current = plans.get(deps, caller, pid)["document"]["Rules"][0]
    assert current["RuleId"] == rule_id
    assert current["ScheduleExpression"] == "cron(0 6 ? * * *)"
    old = plans.get(deps, caller, pid, version_id=v1)["document"]["Rules"][0]
    assert old["ScheduleExpression"] == "cron(0 5 ? * * *)"
    versions = plans.list_versions(deps, caller, pid).items
    assert [v["version_id"] for v in versions] == [updated["version_id"], v1]


def test_delete_is_refused_while_selections_exist(deps: Deps, caller: Caller) -> None:
    pid = plans.create(deps, caller, daily())["backup_plan_id"]
    sel = selections.create(deps, caller, pid, tagged())
    with pytest.raises(plans.PlanHasSelections):
        plans.delete(deps, caller, pid)
    selections.delete(deps, caller, pid, sel["selection_id"])
    deleted = plans.delete(deps, caller, pid)
    assert deleted["deletion_date"] == caller.now
    assert plans.list_plans(deps, caller).items == []
    listed = plans.list_plans(deps, caller, include_deleted=True).items
    assert [p["backup_plan_id"] for p in listed] == [pid]
    assert plans.get(deps, caller, pid)["document"]["BackupPlanName"] == "daily"
    with pytest.raises(NotFound):
        plans.update(deps, caller, pid, daily())


def test_runs_preview_merges_rules_soonest_first(deps: Deps, caller: Caller) -> None:
    doc = daily()
    doc["Rules"].append(
        {
            "RuleName": "weekly",
            "TargetBackupVaultName": "main",
            "ScheduleExpression": "cron(30 4 ? * SUN *)",
            "ScheduleExpressionTimezone": "Europe/Paris",
        }
    )
    pid = plans.create(deps, caller, doc)["backup_plan_id"]
    preview = plans.get(deps, caller, pid, max_runs_preview=3)["runs_preview"]
    # 2026-01-01 is a Thursday; Sunday 04:30 Paris is 03:30 UTC on 2026-01-04.
    assert [r["ExecutionTime"] for r in preview] == [
        datetime(2026, 1, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 5, tzinfo=UTC),
        datetime(2026, 1, 3, 5, tzinfo=UTC),
    ]
    five = plans.get(deps, caller, pid, max_runs_preview=5)["runs_preview"]
    assert datetime(2026, 1, 4, 3, 30, tzinfo=UTC) in [r["ExecutionTime"] for r in five]
    with pytest.raises(InvalidInput):
        plans.get(deps, caller, pid, max_runs_preview=11)


def test_export_and_from_json_round_trip(deps: Deps, caller: Caller) -> None:
    pid = plans.create(deps, caller, daily())["backup_plan_id"]
    text = plans.export_template(deps, caller, pid)
    assert "RuleId" not in text
    doc = plans.plan_from_json(text)
    assert doc["Rules"][0]["Lifecycle"] == {"DeleteAfterDays": 35}
    with pytest.raises(InvalidInput, match="BackupPlanTemplateJson"):
        plans.plan_from_json("{nope")


def test_every_template_is_a_valid_plan(deps: Deps, caller: Caller) -> None:
    ids = [t["BackupPlanTemplateId"] for t in plans.list_templates()]
    assert len(ids) >= 3
    for tid in ids:
        doc = plans.template(tid)
        plans.validate(doc)
        doc["BackupPlanName"] = "changed"  # a copy: the shipped one is untouched
        assert plans.template(tid)["BackupPlanName"] != "changed"
    with pytest.raises(NotFound):
        plans.template("nope")
    assert json.dumps(plans.template(ids[0]))


def test_selection_crud_and_preview(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    for name, tags in (("a", {"Backup": "true"}), ("b", {"Backup": "false"}), ("c", {})):
        (tmp_path / name).mkdir()
        resources.register(
            deps,
            caller,
            resource_type="Directory",
            name=name,
            source=str(tmp_path / name),
            tags=tags,
        )
    pid = plans.create(deps, caller, daily())["backup_plan_id"]
    sel = selections.create(deps, caller, pid, tagged())
    assert selections.get(deps, caller, pid, sel["selection_id"])["name"] == "tagged"
    assert [s["selection_id"] for s in selections.list_selections(deps, caller, pid).items] == [
        sel["selection_id"]
    ]
    preview = selections.preview_stored(deps, caller, pid, sel["selection_id"])
    assert [(p["ResourceName"], p["Selected"]) for p in preview] == [
        ("a", True),
        ("b", False),
        ("c", False),
    ]
    assert "ListOfTags" in preview[0]["Explanation"]
    everything = selections.preview(deps, caller, {"SelectionName": "all", "IamRoleArn": ROLE})
    assert all(p["Selected"] for p in everything)


def test_selection_on_unknown_plan_is_not_found(deps: Deps, caller: Caller) -> None:
    with pytest.raises(NotFound):
        selections.create(deps, caller, "00000000-0000-0000-0000-000000000000", tagged())


def test_inventory_index_agrees_with_plain_matching() -> None:
    rows = [
        {
            "arn": f"arn:aws:snowvault:us-east-1:1:directory/r{i}",
            "resource_type": "Directory",
            "name": f"r{i}",
            "tags": {"Backup": "true" if i % 3 == 0 else "no", "env": f"e{i % 2}"},
        }
        for i in range(30)
    ]
    docs = [
        tagged(),
        {
            "SelectionName": "c",
            "IamRoleArn": ROLE,
            "Conditions": {
                "StringEquals": [{"ConditionKey": "aws:ResourceTag/env", "ConditionValue": "e1"}]
            },
        },
        {
            "SelectionName": "r",
            "IamRoleArn": ROLE,
            "Resources": ["arn:aws:snowvault:us-east-1:1:directory/r1*"],
        },
    ]
    from snowvault.control.model import selection as model

    for doc in docs:
        sel = model.selection_from_api(doc)
        expected = {r["arn"] for r in rows if model.matches(sel, selections.as_model(r))}
        assert set(selections.resolve([doc], rows)) == expected
        assert expected  # each case selects something
