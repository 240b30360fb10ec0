"""AWS Backup's non-adjustable quotas (helper Q's probe): a backup plan holds at most 100
selections (300 were accepted on one plan, and the scheduler resolves each of a due
plan's selections against the whole inventory) and an account at most 50 legal holds
that still restrain points (each delete and expiry reads them all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.access_world import World
from snowvault.control.model.legal_holds import Selection
from snowvault.control.services import errors, legal_holds, plans, selections
from snowvault.interfaces.api import errors as api_errors
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::123456789012:role/backup"
ALL = Selection()


def _selection(name: str) -> dict[str, object]:
    return {"SelectionName": name, "IamRoleArn": ROLE, "Resources": ["*"]}


def test_the_hundred_and_first_selection_is_a_limit_exceeded(
    tmp_path: Path, clock: FakeClock
) -> None:
    world = World(tmp_path, clock)
    world.vault("main")
    rule = {"RuleName": "daily", "TargetBackupVaultName": "main"}
    plan = plans.create(world.deps, world.root, {"BackupPlanName": "p", "Rules": [rule]})
    plan_id = str(plan["backup_plan_id"])
    first = selections.create(
        world.deps, world.root, plan_id, _selection("s0"), creator_request_id="c0"
    )
    for i in range(1, selections.MAX_PER_PLAN):
        selections.create(world.deps, world.root, plan_id, _selection(f"s{i}"))
    with pytest.raises(errors.QuotaExceeded, match=plan_id) as info:
        selections.create(world.deps, world.root, plan_id, _selection("one-more"))
    assert api_errors.ERROR_TABLE[type(info.value)] == ("LimitExceededException", 400)
    again = selections.create(  # a repeated CreatorRequestId still answers its selection
        world.deps, world.root, plan_id, _selection("s0"), creator_request_id="c0"
    )
    assert again["selection_id"] == first["selection_id"]
    other = plans.create(world.deps, world.root, {"BackupPlanName": "q", "Rules": [rule]})
    selections.create(world.deps, world.root, str(other["backup_plan_id"]), _selection("s"))


def test_the_fifty_first_legal_hold_is_a_limit_exceeded(tmp_path: Path, clock: FakeClock) -> None:
    """AWS Backup's quota of legal holds per account (not adjustable); a cancelled hold
    frees its place."""
    world = World(tmp_path, clock)
    made = [
        legal_holds.create(world.deps, world.root, title=f"h{i}", description="d", selection=ALL)
        for i in range(legal_holds.MAX_HOLDS)
    ]
    with pytest.raises(errors.QuotaExceeded, match="legal holds") as info:
        legal_holds.create(world.deps, world.root, title="one more", description="d", selection=ALL)
    assert api_errors.ERROR_TABLE[type(info.value)] == ("LimitExceededException", 400)
    legal_holds.cancel(world.deps, world.root, str(made[0]["legal_hold_id"]), "done", None)
    legal_holds.create(world.deps, world.root, title="now", description="d", selection=ALL)
