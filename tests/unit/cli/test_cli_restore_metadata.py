"""``snowvault restore start --metadata KEY=VALUE`` (any type's restore keys) and
``snowvault recovery-point restore-metadata`` (the keys a point takes, with defaults)."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from helpers.fake_api import ENV, FakeApi
from snowvault.interfaces.cli import main

RP = "arn:aws:backup:us-east-1:123456789012:recovery-point:abc"


def run(api: FakeApi, *args: str) -> Result:
    return CliRunner().invoke(main.cli, list(args), obj={"api_factory": lambda p: api, "env": ENV})


def test_metadata_pairs_are_sent_as_given_and_to_is_the_directory_shorthand() -> None:
    api = FakeApi({"start_restore_job": {"RestoreJobId": "j1"}})
    pit = "pointInTime=2026-12-07T03:00:00Z"
    result = run(
        api, "restore", "start", "--recovery-point", RP, "--metadata", "targetDirectory=/srv/pg",
        "--metadata", pit, "--metadata", "validationQuery=SELECT count(*) FROM t WHERE a=b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert api.params("start_restore_job")["Metadata"] == {
        "targetDirectory": "/srv/pg",
        "pointInTime": "2026-12-07T03:00:00Z",
        "validationQuery": "SELECT count(*) FROM t WHERE a=b",  # only the first '=' splits
    }
    api = FakeApi({"start_restore_job": {"RestoreJobId": "j2"}})
    assert run(api, "restore", "start", "--recovery-point", RP, "--to", "/srv/x").exit_code == 0
    assert api.params("start_restore_job")["Metadata"] == {"targetPath": "/srv/x"}


def test_a_restore_without_any_target_or_with_a_bad_pair_is_refused_before_any_call() -> None:
    for extra in ([], ["--metadata", "novalue"], ["--metadata", "=x"]):
        api = FakeApi()
        result = run(api, "restore", "start", "--recovery-point", RP, *extra)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert api.calls == []


def test_restore_metadata_lists_the_keys_and_defaults() -> None:
    answer = {
        "ResourceType": "PostgreSQL",
        "RestoreMetadata": {"targetDsn": "postgresql://u@127.0.0.1:5432", "databases": ""},
    }
    points = {"RecoveryPoints": [{"RecoveryPointArn": RP}]}
    api = FakeApi(
        {
            "get_recovery_point_restore_metadata": answer,
            "list_recovery_points_by_backup_vault": points,
        }
    )
    args = ["recovery-point", "restore-metadata", RP, "--vault", "v"]
    result = run(api, *args)
    assert result.exit_code == 0, result.output
    assert "targetDsn=postgresql://u@127.0.0.1:5432" in result.output
    result = run(api, *args, "--json")
    assert json.loads(result.output)["RestoreMetadata"]["databases"] == ""
