"""The management commands against a scripted API: parameters sent, output, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from helpers.fake_api import ENV, FakeApi
from snowvault.core import errors as core_errors
from snowvault.interfaces.cli import client, errors, job_cmd, main

RESOURCE_ARN = "arn:aws:backup:us-east-1:123456789012:resource:dir-1"
RP = "arn:aws:backup:us-east-1:123456789012:recovery-point:"


def run(api: FakeApi, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(
        main.cli, list(args), obj={"api_factory": lambda p: api, "env": ENV}, catch_exceptions=True
    )


def json_out(result: Result) -> Any:
    assert result.exception is None, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_vault_create_sends_name_and_tags() -> None:
    api = FakeApi({"create_backup_vault": {"BackupVaultName": "v", "BackupVaultArn": "arn:v"}})
    out = json_out(run(api, "vault", "create", "v", "--tag", "team=a", "--tag", "env=", "--json"))
    assert out["BackupVaultArn"] == "arn:v"
    assert api.params("create_backup_vault") == {
        "BackupVaultName": "v",
        "BackupVaultTags": {"team": "a", "env": ""},
    }


def test_vault_list_human_table_has_names() -> None:
    api = FakeApi(
        {
            "list_backup_vaults": {
                "BackupVaultList": [
                    {
                        "BackupVaultName": "alpha",
                        "NumberOfRecoveryPoints": 3,
                        "BackupVaultArn": "arn:a",
                    }
                ]
            }
        }
    )
    result = run(api, "vault", "list")
    assert result.exit_code == 0
    assert "alpha" in result.stdout and "NAME" in result.stdout


def test_bad_tag_is_invalid_input() -> None:
    result = run(FakeApi(), "vault", "create", "v", "--tag", "novalue")
    assert isinstance(result.exception, core_errors.InvalidInput)


def test_resource_add_sends_an_absolute_source(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    api = FakeApi({"RegisterResource": {"ResourceArn": RESOURCE_ARN, "Name": "docs"}})
    out = json_out(run(api, "resource", "add", "directory", "data", "--name", "docs", "--json"))
    assert out["ResourceArn"] == RESOURCE_ARN
    assert api.params("RegisterResource") == {
        "ResourceType": "Directory",
        "Name": "docs",
        "Source": str(tmp_path / "data"),
    }


def _resources(*names: str) -> dict[str, Any]:
    return {
        "Resources": [
            {"Name": n, "ResourceArn": f"{RESOURCE_ARN}-{i}"} for i, n in enumerate(names)
        ]
    }


def test_resource_names_resolve_to_arns_and_ambiguity_is_refused() -> None:
    api = FakeApi({"ListResources": _resources("docs", "home", "home")})
    assert run(api, "resource", "untag", "docs", "team").exit_code == 0
    assert api.params("UntagResource") == {"ResourceArn": f"{RESOURCE_ARN}-0", "TagKeys": ["team"]}
    result = run(api, "resource", "remove", "home")
    assert isinstance(result.exception, core_errors.InvalidInput)
    assert "DeregisterResource" not in api.names()
    result = run(api, "resource", "describe", "nothing")
    assert isinstance(result.exception, core_errors.NotFound)


def test_backup_start_uses_default_role_in_the_resource_account() -> None:
    api = FakeApi({"start_backup_job": {"BackupJobId": "job-1"}})
    out = json_out(
        run(
            api,
            "backup",
            "start",
            "--resource",
            RESOURCE_ARN,
            "--vault",
            "v",
            "--delete-after-days",
            "7",
            "--json",
        )
    )
    assert out == {"BackupJobId": "job-1"}
    assert api.params("start_backup_job") == {
        "BackupVaultName": "v",
        "ResourceArn": RESOURCE_ARN,
        "IamRoleArn": "arn:aws:iam::123456789012:role/snowvault",
        "Lifecycle": {"DeleteAfterDays": 7},
    }


def _states(*states: str) -> Any:
    remaining = list(states)

    def describe(params: dict[str, Any]) -> dict[str, Any]:
        state = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return {
            "BackupJobId": params["BackupJobId"],
            "State": state,
            "PercentDone": "50.0",
            "StatusMessage": "disk on fire" if state == "FAILED" else None,
        }

    return describe


def test_backup_wait_polls_until_done(monkeypatch: Any) -> None:
    monkeypatch.setattr(job_cmd.time, "sleep", lambda s: None)
    api = FakeApi(
        {
            "start_backup_job": {"BackupJobId": "j"},
            "describe_backup_job": _states("CREATED", "RUNNING", "COMPLETED"),
        }
    )
    out = json_out(
        run(api, "backup", "start", "--resource", RESOURCE_ARN, "--vault", "v", "--wait", "--json")
    )
    assert out["State"] == "COMPLETED"
    assert api.names().count("describe_backup_job") == 3


def test_backup_wait_fails_on_a_failed_job(monkeypatch: Any) -> None:
    monkeypatch.setattr(job_cmd.time, "sleep", lambda s: None)
    api = FakeApi(
        {
            "start_backup_job": {"BackupJobId": "j"},
            "describe_backup_job": _states("RUNNING", "FAILED"),
        }
    )
    result = run(
        api, "backup", "start", "--resource", RESOURCE_ARN, "--vault", "v", "--wait", "--json"
    )
    assert isinstance(result.exception, client.JobUnsuccessful)
    assert str(result.exception) == "backup job j ended FAILED: disk on fire"
    assert errors.exit_code(result.exception) == 10
    assert json.loads(result.stdout)["State"] == "FAILED"


def test_poll_backs_off_and_stops_at_a_terminal_state() -> None:
    slept: list[float] = []
    answers = iter([{"State": "RUNNING"}] * 4 + [{"State": "EXPIRED"}])
    seen: list[str] = []
    job = job_cmd.poll(
        lambda: next(answers), job_cmd.BACKUP, lambda j: seen.append(j["State"]), sleep=slept.append
    )
    assert job["State"] == "EXPIRED"
    assert seen == ["RUNNING"] * 4 + ["EXPIRED"]
    assert slept == [0.5, 0.75, 1.125, 1.6875]


def test_restore_start_sends_aws_style_metadata() -> None:
    api = FakeApi({"start_restore_job": {"RestoreJobId": "r-1"}})
    result = run(
        api,
        "restore",
        "start",
        "--recovery-point",
        RP + "abc",
        "--to",
        "/srv/out",
        "--item",
        "/a.txt",
        "--item",
        "/b",
        "--overwrite",
    )
    assert result.exit_code == 0, result.output
    assert "started restore job r-1" in result.stdout
    assert api.params("start_restore_job") == {
        "RecoveryPointArn": RP + "abc",
        "Metadata": {
            "targetPath": "/srv/out",
            "items": '["/a.txt", "/b"]',
            "overwrite": "true",
        },
        "IamRoleArn": "arn:aws:iam::123456789012:role/snowvault",
    }


def test_recovery_point_ids_resolve_by_unique_suffix() -> None:
    api = FakeApi(
        {
            "list_recovery_points_by_backup_vault": {
                "RecoveryPoints": [
                    {"RecoveryPointArn": RP + "aaa1"},
                    {"RecoveryPointArn": RP + "bbb1"},
                ]
            },
            "describe_recovery_point": lambda p: {"RecoveryPointArn": p["RecoveryPointArn"]},
        }
    )
    out = json_out(run(api, "recovery-point", "describe", "bbb1", "--vault", "v", "--json"))
    assert out["RecoveryPointArn"] == RP + "bbb1"
    result = run(api, "recovery-point", "delete", "1", "--vault", "v")
    assert isinstance(result.exception, core_errors.InvalidInput)
    assert "delete_recovery_point" not in api.names()


def test_recovery_point_list_needs_exactly_one_filter() -> None:
    result = run(FakeApi(), "recovery-point", "list")
    assert isinstance(result.exception, core_errors.InvalidInput)


def test_recovery_point_ls_calls_the_extension() -> None:
    entries = [
        {"Path": "/a.txt", "Type": "file", "Size": 3, "Mode": 0o644, "ModifiedTime": 1767225600.5}
    ]
    api = FakeApi({"ListRecoveryPointContents": {"Entries": entries}})
    result = run(api, "recovery-point", "ls", RP + "x", "/docs", "-r")
    assert result.exit_code == 0, result.output
    assert "/a.txt" in result.stdout and "0644" in result.stdout
    assert "2026-01-01T00:00:00+00:00" in result.stdout
    assert api.params("ListRecoveryPointContents") == {
        "RecoveryPointArn": RP + "x",
        "Path": "/docs",
        "Recursive": True,
    }


def test_job_list_merges_backup_and_restore_jobs_newest_first() -> None:
    api = FakeApi(
        {
            "list_backup_jobs": {
                "BackupJobs": [{"BackupJobId": "b", "CreationDate": "2026-01-02"}]
            },
            "list_restore_jobs": {
                "RestoreJobs": [{"RestoreJobId": "r", "CreationDate": "2026-01-03"}]
            },
        }
    )
    out = json_out(run(api, "job", "list", "--json"))
    assert [(j["JobType"], j.get("BackupJobId") or j.get("RestoreJobId")) for j in out] == [
        ("restore", "r"),
        ("backup", "b"),
    ]
    json_out(run(api, "job", "list", "--vault", "v", "--state", "RUNNING", "--json"))
    assert api.calls[-1] == ("list_backup_jobs", {"ByState": "RUNNING", "ByBackupVaultName": "v"})


def test_job_describe_falls_back_to_restore_jobs() -> None:
    def missing(params: dict[str, Any]) -> dict[str, Any]:
        raise client.api_error("ResourceNotFoundException", "no backup job")

    api = FakeApi(
        {
            "describe_backup_job": missing,
            "describe_restore_job": {"RestoreJobId": "r", "Status": "COMPLETED"},
        }
    )
    out = json_out(run(api, "job", "describe", "r", "--json"))
    assert (out["JobType"], out["Status"]) == ("restore", "COMPLETED")


def test_main_prints_one_line_and_exit_code_when_the_server_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert main.main(["vault", "describe", "v"]) == 7
    err = capsys.readouterr().err
    assert err.startswith("snowvault: error: cannot reach the snowvault server")
    assert err.count("\n") == 1 and "Traceback" not in err
