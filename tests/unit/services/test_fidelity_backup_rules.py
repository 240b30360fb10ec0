"""Issue 10's pure rules of the backup API: plan-document equality, CopyActions kept,
creation order under a frozen clock, job-summary windows, error-body members, and the
services behind them over a real SQLite catalog."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snowvault.control.services import backup_jobs, legal_holds, plans, tagging, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound
from snowvault.interfaces.api import errors as api_errors

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def _doc(name: str = "p", vault: str = "main", **rule: Any) -> dict[str, Any]:
    return {
        "BackupPlanName": name,
        "Rules": [
            {
                "RuleName": "r",
                "TargetBackupVaultName": vault,
                "ScheduleExpression": "cron(0 5 ? * * *)",
                **rule,
            }
        ],
    }


def test_documents_equal_up_to_rule_ids_and_defaults() -> None:
    a = plans.normalize(_doc(), {})
    b = plans.normalize(_doc(StartWindowMinutes=480), {})  # the default, spelled out
    assert a["Rules"][0]["RuleId"] != b["Rules"][0]["RuleId"]
    assert plans.comparable(a) == plans.comparable(b)
    c = plans.normalize(_doc(ScheduleExpression="cron(0 6 ? * * *)"), {})
    assert plans.comparable(a) != plans.comparable(c)


def test_copy_actions_are_kept_and_a_bad_destination_is_refused() -> None:
    copy = [
        {
            "DestinationBackupVaultArn": "arn:aws:backup:eu-west-1:222233334444:backup-vault:dr",
            "Lifecycle": {"DeleteAfterDays": 30},
        }
    ]
    assert plans.normalize(_doc(CopyActions=copy), {})["Rules"][0]["CopyActions"] == copy
    with pytest.raises(InvalidInput) as raised:
        plans.validate(_doc(CopyActions=[{"DestinationBackupVaultArn": "vault-x"}]))
    assert "DestinationBackupVaultArn" in str(raised.value)


def test_creation_date_moves_past_the_newest_plan_when_the_clock_does_not() -> None:
    assert plans.creation_date_after(NOW, None) == NOW
    assert plans.creation_date_after(NOW, NOW - timedelta(seconds=1)) == NOW
    assert plans.creation_date_after(NOW, NOW) == NOW + timedelta(microseconds=1)


def test_one_day_summaries_are_fourteen_utc_days_ending_now() -> None:
    windows = backup_jobs.summary_windows("ONE_DAY", NOW)
    assert len(windows) == 14
    assert windows[-1] == (datetime(2026, 3, 10, tzinfo=UTC), NOW + timedelta(microseconds=1))
    assert windows[0][0] == datetime(2026, 2, 25, tzinfo=UTC)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert backup_jobs.summary_windows("SEVEN_DAYS", NOW) == [
        (NOW - timedelta(days=7), NOW + timedelta(microseconds=1))
    ]
    with pytest.raises(InvalidInput):
        backup_jobs.summary_windows("ONE_WEEK", NOW)


def test_already_exists_carries_arn_and_request_id_in_the_body() -> None:
    exc = AlreadyExists(kind="backup vault", name="v", arn="arn:x", creator_request_id="r")
    body = api_errors.error_body(api_errors.to_api_error(exc))
    assert body["Arn"] == "arn:x"
    assert body["CreatorRequestId"] == "r"
    assert body["__type"] == "AlreadyExistsException"
    bare = api_errors.error_body(api_errors.to_api_error(AlreadyExists(kind="k", name="n")))
    assert "Arn" not in bare and "CreatorRequestId" not in bare
    other = api_errors.error_body(api_errors.to_api_error(NotFound(kind="k", name="n", arn="a")))
    assert "Arn" not in other  # only the members the code's shape models


# --- the services over a real catalog ---------------------------------------------------------


def test_duplicate_document_and_missing_vault(deps: Deps, caller: Caller) -> None:
    with pytest.raises(InvalidInput, match="backup vault main does not exist"):
        plans.create(deps, caller, _doc())
    vaults.create(deps, caller, "main")
    first = plans.create(deps, caller, _doc(), creator_request_id="one")
    with pytest.raises(AlreadyExists) as raised:
        plans.create(deps, caller, _doc(), creator_request_id="two")
    assert raised.value.fields["arn"] == first["arn"]
    assert raised.value.fields["creator_request_id"] == "one"


def test_default_vault_is_made_on_first_use(deps: Deps, caller: Caller) -> None:
    assert [v["name"] for v in vaults.list_vaults(deps, caller).items] == ["Default"]
    vaults.ensure_default(deps, caller)  # again: nothing new
    assert [v["name"] for v in vaults.list_vaults(deps, caller).items] == ["Default"]
    assert vaults.get(deps, caller, "Default")["arn"].endswith(":backup-vault:Default")
    plan = plans.create(deps, caller, plans.template("daily-35day-retention"))
    assert plan["backup_plan_id"]


def test_plans_made_at_one_instant_list_in_creation_order(deps: Deps, caller: Caller) -> None:
    vaults.create(deps, caller, "main")
    made = [plans.create(deps, caller, _doc(f"p{i}"))["backup_plan_id"] for i in range(5)]
    listed = [p["backup_plan_id"] for p in plans.list_plans(deps, caller).items]
    assert listed == made


def test_legal_hold_arns_are_taggable(deps: Deps, caller: Caller) -> None:
    hold = legal_holds.create(
        deps,
        caller,
        title="t",
        description="d",
        selection=legal_holds.selection_from_api({"VaultNames": ["main"]}),
        tags={"a": "1"},
    )
    arn = legal_holds.hold_arn(caller, hold["legal_hold_id"])
    assert tagging.list_tags(deps, caller, arn) == {"a": "1"}
    tagging.tag(deps, caller, arn, {"b": "2"})
    assert tagging.list_tags(deps, caller, arn) == {"a": "1", "b": "2"}
    with pytest.raises(NotFound):
        tagging.list_tags(deps, caller, arn.replace(hold["legal_hold_id"], "nope"))
