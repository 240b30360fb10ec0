"""A newcomer's first hour: printed commands, names for ids, ARNs alone, sizes,
restore listings, errors in flag terms, quickstart re-runs (fake API, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from helpers.fake_api import ENV, FakeApi
from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import client, main, quickstart_cmd, server_cmd


def _venv(tmp_path: Path, *tools: str) -> str:
    bin_dir = tmp_path / "repo" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", *tools):
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return str(bin_dir / "python")


def test_printed_examples_use_the_venv_path_from_the_repository(tmp_path: Path) -> None:
    python = _venv(tmp_path, "aws", "snowvault")
    text = server_cmd._example("http://127.0.0.1:8765", python, str(tmp_path / "repo"))
    assert ".venv/bin/aws backup list-backup-vaults --endpoint-url http://127.0.0.1:8765" in text
    assert ".venv/bin/snowvault vault create my-vault" in text
    elsewhere = server_cmd._example("http://x", python, "/")
    assert f"{tmp_path}/repo/.venv/bin/snowvault vault list" in elsewhere


def test_no_aws_example_when_awscli_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _venv(tmp_path, "snowvault")
    monkeypatch.setenv("PATH", "/nonexistent")
    text = server_cmd._example("http://127.0.0.1:8765", python, str(tmp_path / "repo"))
    assert "aws " not in text
    assert ".venv/bin/snowvault vault list" in text


# ---------------------------------------------------------------- through the CLI


def run(api: FakeApi, *args: str) -> Result:
    obj = {"api_factory": lambda p: api, "env": ENV}
    return CliRunner().invoke(main.cli, list(args), obj=obj, catch_exceptions=True)


PLAN_UUID = "0f0e0d0c-0b0a-4909-8807-060504030201"
SEL_UUID = "11111111-2222-4333-8444-555555555555"
RP_ARN = "arn:aws:backup:us-east-1:123456789012:recovery-point:rp-abc"


def test_plans_and_selections_are_named_by_name() -> None:
    api = FakeApi(
        {
            "list_backup_plans": {
                "BackupPlansList": [{"BackupPlanName": "daily", "BackupPlanId": PLAN_UUID}]
            },
            "list_backup_selections": {
                "BackupSelectionsList": [{"SelectionName": "tagged", "SelectionId": SEL_UUID}]
            },
            "get_backup_plan": {"BackupPlanId": PLAN_UUID, "BackupPlan": {"Rules": []}},
            "PreviewSelection": {"Resources": []},
        }
    )
    assert run(api, "plan", "describe", "daily").exit_code == 0
    assert api.params("get_backup_plan")["BackupPlanId"] == PLAN_UUID
    result = run(api, "selection", "preview", "--plan", "daily", "--selection", "tagged")
    assert result.exit_code == 0, result.output
    assert api.params("PreviewSelection") == {"BackupPlanId": PLAN_UUID, "SelectionId": SEL_UUID}
    assert (
        run(api, "selection", "delete", "--plan", "daily", "--selection", "tagged").exit_code == 0
    )
    assert api.params("delete_backup_selection") == {
        "BackupPlanId": PLAN_UUID,
        "SelectionId": SEL_UUID,
    }


def test_an_ambiguous_plan_name_is_one_line_naming_the_ids() -> None:
    twins = [
        {"BackupPlanName": "daily", "BackupPlanId": "a-1"},
        {"BackupPlanName": "daily", "BackupPlanId": "b-2"},
    ]
    api = FakeApi({"list_backup_plans": {"BackupPlansList": twins}})
    result = run(api, "plan", "delete", "daily")
    assert isinstance(result.exception, InvalidInput)
    assert "2 backup plans are named 'daily' (a-1, b-2); give the id" in str(result.exception)
    assert "delete_backup_plan" not in api.names()


def test_recovery_point_describe_and_delete_take_a_full_arn_alone() -> None:
    def points(params: dict[str, Any]) -> dict[str, Any]:
        held = {"other": [], "main": [{"RecoveryPointArn": RP_ARN}]}
        return {"RecoveryPoints": held[params["BackupVaultName"]]}

    api = FakeApi(
        {
            "list_backup_vaults": {
                "BackupVaultList": [{"BackupVaultName": "other"}, {"BackupVaultName": "main"}]
            },
            "list_recovery_points_by_backup_vault": points,
            "describe_recovery_point": {"RecoveryPointArn": RP_ARN, "BackupSizeInBytes": 2048},
        }
    )
    result = run(api, "recovery-point", "describe", RP_ARN)
    assert result.exit_code == 0, result.output
    assert api.params("describe_recovery_point") == {
        "BackupVaultName": "main",
        "RecoveryPointArn": RP_ARN,
    }
    assert "2.0 KiB" in result.output or "2 KiB" in result.output
    assert run(api, "recovery-point", "delete", "rp-abc").exit_code == 0
    assert api.params("delete_recovery_point")["BackupVaultName"] == "main"


def test_sizes_are_the_ones_the_api_gives() -> None:
    by_resource = {"RecoveryPoints": [{"RecoveryPointArn": RP_ARN, "BackupSizeBytes": 3 << 20}]}
    api = FakeApi({"list_recovery_points_by_resource": by_resource})
    result = run(api, "recovery-point", "list", "--resource", "arn:aws:snowvault:r:1:dir/x")
    assert result.exit_code == 0, result.output
    assert "3.0 MiB" in result.output and "0 B" not in result.output
    incremental = {"BackupJobId": "j1", "State": "COMPLETED"}
    incremental |= {"BytesTransferred": 8, "BackupSizeInBytes": 5 << 20}
    api = FakeApi({"list_backup_jobs": {"BackupJobs": [incremental]}})
    listed = run(api, "job", "list", "--type", "backup")
    assert "5.0 MiB" in listed.output and "8 B" not in listed.output


def test_restore_job_listing_shows_vault_resource_and_target() -> None:
    job = {
        "RestoreJobId": "r1",
        "Status": "COMPLETED",
        "BackupVaultArn": "arn:aws:backup:us-east-1:123456789012:backup-vault:main",
        "SourceResourceArn": "arn:aws:snowvault:us-east-1:123456789012:directory/src",
        "CreatedResourceArn": "arn:aws:snowvault:us-east-1:123456789012:directory/restored",
    }
    api = FakeApi({"list_restore_jobs": {"RestoreJobs": [job]}})
    result = run(api, "job", "list", "--type", "restore")
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert "VAULT" in header and "RESOURCE" in header and "TARGET" in header
    assert "main" in result.output
    assert "directory/src" in result.output and "directory/restored" in result.output


def test_errors_speak_flags_not_metadata_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi()
    refused = "Metadata.targetPath '/t': is not empty; "
    refused += 'set Metadata.overwrite to "true" to restore over it'

    def start(params: dict[str, Any]) -> dict[str, Any]:
        raise client.api_error("InvalidParameterValueException", refused)

    api.answers["start_restore_job"] = start
    for name, value in ENV.items():  # main() reads the real environment and client.Api
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(client, "Api", lambda profile: api)
    code = main.main(["restore", "start", "--recovery-point", RP_ARN, "--to", "/t"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--to '/t': is not empty; pass --overwrite to restore over it" in err
    assert "Metadata." not in err


def test_quickstart_again_with_another_dir_protects_that_dir(tmp_path: Path) -> None:
    earlier = str(tmp_path / "first")
    api = FakeApi(
        {
            "list_backup_vaults": {"BackupVaultList": []},
            "create_backup_vault": {"BackupVaultArn": "arn:vault:quickstart"},
            "ListResources": {
                "Resources": [
                    {
                        "Name": quickstart_cmd.RESOURCE,
                        "ResourceArn": "arn:aws:snowvault:us-east-1:123456789012:directory/one",
                        "Source": earlier,
                    }
                ]
            },
            "RegisterResource": {
                "ResourceArn": "arn:aws:snowvault:us-east-1:123456789012:directory/two"
            },
            "list_backup_plans": {"BackupPlansList": []},
            "create_backup_plan": {"BackupPlanId": "p"},
            "create_backup_selection": {"SelectionId": "s"},
            "start_backup_job": {"BackupJobId": "j"},
            "describe_backup_job": {"BackupJobId": "j", "State": "COMPLETED"},
            "get_backup_plan": {"BackupPlanArn": "arn:aws:backup:us-east-1:1:backup-plan:p"},
        }
    )
    second = tmp_path / "second"
    result = run(api, "quickstart", "--dir", str(second))
    assert result.exit_code == 0, result.output
    registered = api.params("RegisterResource")
    assert registered["Source"] == str(second)
    assert registered["Name"] == f"{quickstart_cmd.RESOURCE}-second"
    assert (
        api.params("start_backup_job")["ResourceArn"]
        == "arn:aws:snowvault:us-east-1:123456789012:directory/two"
    )
    assert f"protected  {second}" in result.stdout
    assert earlier in result.output  # the note names what the earlier run protects


def test_job_list_takes_a_resource_name() -> None:
    arn = "arn:aws:snowvault:us-east-1:123456789012:directory/docs"
    restore = {"RestoreJobId": "r1", "Status": "COMPLETED", "SourceResourceArn": arn}
    api = FakeApi(
        {
            "ListResources": {"Resources": [{"Name": "docs", "ResourceArn": arn}]},
            "list_backup_jobs": {"BackupJobs": []},
            "list_restore_jobs": {"RestoreJobs": [restore, {"RestoreJobId": "r2"}]},
        }
    )
    result = run(api, "job", "list", "--resource", "docs")
    assert result.exit_code == 0, result.output
    assert api.params("list_backup_jobs") == {"ByResourceArn": arn}
    assert "r1" in result.output and "r2" not in result.output
