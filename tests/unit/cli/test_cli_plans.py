"""``snowvault plan``, ``selection`` and ``quickstart`` against a scripted API: the
parameters each sends, what it prints, and its one-line failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from helpers.fake_api import ENV, FakeApi
from snowvault.core import errors as core_errors
from snowvault.interfaces.cli import client, main, quickstart_cmd

PLAN_ARN = "arn:aws:backup:us-east-1:123456789012:backup-plan:p-1"
RES_ARN = "arn:aws:snowvault:us-east-1:123456789012:directory/quickstart-sample"
TEMPLATES = {
    "BackupPlanTemplatesList": [
        {"BackupPlanTemplateId": "daily-35day-retention", "BackupPlanTemplateName": "Daily-35"},
        {"BackupPlanTemplateId": "hourly-7day-retention", "BackupPlanTemplateName": "Hourly-7"},
    ]
}
DOC = {
    "BackupPlanName": "Daily-35",
    "Rules": [
        {
            "RuleName": "DailyBackups",
            "TargetBackupVaultName": "Default",
            "ScheduleExpression": "cron(0 5 ? * * *)",
            "Lifecycle": {"DeleteAfterDays": 35},
        }
    ],
}


def run(api: FakeApi, *args: str, env: dict[str, str] | None = None) -> Result:
    obj = {"api_factory": lambda p: api, "env": ENV if env is None else env}
    return CliRunner().invoke(main.cli, list(args), obj=obj, catch_exceptions=True)


def json_out(result: Result) -> Any:
    assert result.exception is None, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plan_create_from_template_by_name_with_vault_override() -> None:
    api = FakeApi(
        {
            "list_backup_plan_templates": TEMPLATES,
            "get_backup_plan_from_template": {"BackupPlanDocument": DOC},
            "create_backup_plan": {"BackupPlanId": "p-1", "VersionId": "v1"},
        }
    )
    out = json_out(
        run(api, "plan", "create", "--from-template", "daily-35", "--vault", "main", "--json")
    )
    assert out["BackupPlanId"] == "p-1"
    assert api.params("get_backup_plan_from_template") == {
        "BackupPlanTemplateId": "daily-35day-retention"
    }
    sent = api.params("create_backup_plan")["BackupPlan"]
    assert sent["Rules"][0]["TargetBackupVaultName"] == "main"
    assert sent["Rules"][0]["ScheduleExpression"] == "cron(0 5 ? * * *)"


def test_plan_create_from_a_describe_json_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"BackupPlanId": "old", "BackupPlan": DOC}))
    api = FakeApi({"create_backup_plan": {"BackupPlanId": "p-2"}})
    result = run(api, "plan", "create", "--file", str(path), "--name", "mine")
    assert result.exit_code == 0, result.output
    assert "created plan mine (p-2)" in result.stdout
    assert api.params("create_backup_plan")["BackupPlan"]["BackupPlanName"] == "mine"


def test_plan_create_needs_exactly_one_source(tmp_path: Path) -> None:
    assert isinstance(run(FakeApi(), "plan", "create").exception, core_errors.InvalidInput)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run(FakeApi(), "plan", "create", "--file", str(bad))
    assert isinstance(result.exception, core_errors.InvalidInput)
    assert "not JSON" in str(result.exception)


def test_unknown_template_names_the_known_ones() -> None:
    api = FakeApi({"list_backup_plan_templates": TEMPLATES})
    result = run(api, "plan", "create", "--from-template", "weekly")
    assert isinstance(result.exception, core_errors.InvalidInput)
    assert "hourly-7day-retention" in str(result.exception)


def test_plan_describe_shows_rules_and_next_runs() -> None:
    plan = {
        "BackupPlanId": "p-1",
        "BackupPlanArn": PLAN_ARN,
        "VersionId": "v1",
        "BackupPlan": {**DOC, "Rules": [dict(DOC["Rules"][0], RuleId="r-1")]},
        "ScheduledRunsPreview": [
            {"ExecutionTime": datetime(2026, 1, 2, 5, tzinfo=UTC), "RuleId": "r-1"}
        ],
    }
    api = FakeApi({"get_backup_plan": plan})
    result = run(api, "plan", "describe", "p-1", "--runs", "3")
    assert result.exit_code == 0, result.output
    assert api.params("get_backup_plan") == {"BackupPlanId": "p-1", "MaxScheduledRunsPreview": 3}
    assert "DailyBackups: cron(0 5 ? * * *) -> vault Default, keep 35 days" in result.stdout
    assert "2026-01-02T05:00:00+00:00  DailyBackups" in result.stdout


def test_plan_list_templates_and_delete() -> None:
    api = FakeApi(
        {
            "list_backup_plans": {
                "BackupPlansList": [{"BackupPlanName": "a", "BackupPlanId": "1"}]
            },
            "list_backup_plan_templates": TEMPLATES,
            "delete_backup_plan": {"BackupPlanId": "1", "VersionId": "v"},
        }
    )
    assert (
        json_out(run(api, "plan", "list", "--include-deleted", "--json"))[0]["BackupPlanId"] == "1"
    )
    assert api.params("list_backup_plans") == {"IncludeDeleted": True}
    assert "daily-35day-retention" in run(api, "plan", "templates").stdout
    assert json_out(run(api, "plan", "delete", "1", "--json"))["VersionId"] == "v"


def test_selection_create_by_tag_and_resource_name() -> None:
    api = FakeApi(
        {
            "get_backup_plan": {"BackupPlanArn": PLAN_ARN},
            "ListResources": {"Resources": [{"Name": "docs", "ResourceArn": RES_ARN}]},
            "create_backup_selection": {"SelectionId": "s-1"},
        }
    )
    args = ["selection", "create", "--plan", "p-1", "--name", "n", "--resource", "docs"]
    out = json_out(run(api, *args, "--resource", "arn:x:*", "--tag", "Backup=true", "--json"))
    assert out["SelectionId"] == "s-1"
    sent = api.params("create_backup_selection")
    assert sent["BackupPlanId"] == "p-1"
    assert sent["BackupSelection"] == {
        "SelectionName": "n",
        "IamRoleArn": "arn:aws:iam::123456789012:role/snowvault",
        "Resources": [RES_ARN, "arn:x:*"],
        "ListOfTags": [
            {"ConditionType": "STRINGEQUALS", "ConditionKey": "Backup", "ConditionValue": "true"}
        ],
    }


def test_selection_create_needs_a_resource_or_a_tag() -> None:
    api = FakeApi({"get_backup_plan": {"BackupPlanArn": PLAN_ARN}})
    result = run(api, "selection", "create", "--plan", "p", "--name", "n")
    assert isinstance(result.exception, core_errors.InvalidInput)
    assert "create_backup_selection" not in api.names()


def test_selection_list_delete_and_preview() -> None:
    rows = [
        {"ResourceName": "a", "Selected": True, "Explanation": "selected: tag Backup=true"},
        {"ResourceName": "b", "Selected": False, "Explanation": "no ListOfTags entry matched"},
    ]
    api = FakeApi(
        {
            "list_backup_selections": {"BackupSelectionsList": [{"SelectionId": "s-1"}]},
            "PreviewSelection": {"Resources": rows},
        }
    )
    assert json_out(run(api, "selection", "list", "--plan", "p", "--json")) == [
        {"SelectionId": "s-1"}
    ]
    assert api.params("list_backup_selections") == {"BackupPlanId": "p"}
    out = run(api, "selection", "delete", "--plan", "p", "--selection", "s-1", "--json")
    assert json_out(out)["Deleted"] is True
    assert api.params("delete_backup_selection") == {"BackupPlanId": "p", "SelectionId": "s-1"}
    text = run(api, "selection", "preview", "--plan", "p", "--selection", "s-1")
    assert "1 of 2 resources selected" in text.stdout
    assert "no ListOfTags entry matched" in text.stdout
    assert api.params("PreviewSelection") == {"BackupPlanId": "p", "SelectionId": "s-1"}
    assert (
        json_out(run(api, "selection", "preview", "--plan", "p", "--selection", "s", "--json"))
        == rows
    )


def _quickstart_api(existing: bool, source: str = "") -> FakeApi:
    known = {"Name": quickstart_cmd.RESOURCE, "ResourceArn": RES_ARN, "Source": source}
    resources = [known] if existing else []
    plans = [{"BackupPlanName": quickstart_cmd.PLAN, "BackupPlanId": "p-old"}] if existing else []
    return FakeApi(
        {
            "list_backup_vaults": {"BackupVaultList": []},
            "create_backup_vault": {"BackupVaultArn": "arn:vault:quickstart"},
            "ListResources": {"Resources": resources},
            "RegisterResource": {"ResourceArn": RES_ARN},
            "list_backup_plans": {"BackupPlansList": plans},
            "create_backup_plan": {"BackupPlanId": "p-new"},
            "list_backup_selections": {"BackupSelectionsList": []},
            "create_backup_selection": {"SelectionId": "s-1"},
            "start_backup_job": {"BackupJobId": "job-1"},
            "describe_backup_job": {
                "BackupJobId": "job-1",
                "State": "COMPLETED",
                "RecoveryPointArn": "arn:rp:1",
            },
            "get_backup_plan": {
                "BackupPlanArn": PLAN_ARN,
                "ScheduledRunsPreview": [{"ExecutionTime": datetime(2026, 1, 2, tzinfo=UTC)}],
            },
        }
    )


def test_quickstart_sets_up_the_scenario_and_reports_it(tmp_path: Path) -> None:
    api = _quickstart_api(existing=False)
    out = json_out(run(api, "quickstart", "--dir", str(tmp_path / "qs"), "--json"))
    assert (tmp_path / "qs" / "data" / "blob.bin").stat().st_size == 64 * 1024
    assert api.params("RegisterResource")["Tags"] == {"Backup": "true"}
    assert api.params("RegisterResource")["Source"] == str(tmp_path / "qs")
    rule = api.params("create_backup_plan")["BackupPlan"]["Rules"][0]
    assert rule["ScheduleExpression"] == "cron(0 0 * * ? *)"
    assert rule["Lifecycle"] == {"DeleteAfterDays": 35}
    tags = api.params("create_backup_selection")["BackupSelection"]["ListOfTags"]
    assert tags == [
        {"ConditionType": "STRINGEQUALS", "ConditionKey": "Backup", "ConditionValue": "true"}
    ]
    assert api.params("start_backup_job")["Lifecycle"] == {"DeleteAfterDays": 35}
    assert out["RecoveryPointArn"] == "arn:rp:1" and out["State"] == "COMPLETED"
    assert out["NextScheduledRun"] == "2026-01-02T00:00:00+00:00"
    assert out["BackupPlanId"] == "p-new" and out["ResourceArn"] == RES_ARN


def test_quickstart_again_reuses_what_exists(tmp_path: Path) -> None:
    api = _quickstart_api(existing=True, source=str(tmp_path))
    result = run(api, "quickstart", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "RegisterResource" not in api.names() and "create_backup_plan" not in api.names()
    assert api.params("TagResource") == {"ResourceArn": RES_ARN, "Tags": {"Backup": "true"}}
    assert "recovery   arn:rp:1" in result.stdout
    assert "plan       quickstart-daily-35d (p-old)" in result.stdout


def test_quickstart_without_a_profile_says_to_run_make_run(tmp_path: Path) -> None:
    result = run(FakeApi(), "quickstart", "--dir", str(tmp_path), env={"HOME": str(tmp_path)})
    assert isinstance(result.exception, client.ClientConfigError)
    assert "`make run`" in str(result.exception)
    assert not (tmp_path / "README.txt").exists()


def test_quickstart_with_the_server_down_says_to_run_make_run(tmp_path: Path) -> None:
    def down(params: dict[str, Any]) -> dict[str, Any]:
        raise client.ServerUnreachable(endpoint="http://127.0.0.1:9", detail="refused")

    result = run(FakeApi({"list_backup_vaults": down}), "quickstart", "--dir", str(tmp_path))
    assert isinstance(result.exception, client.ServerUnreachable)
    assert "`make run`" in str(result.exception)
