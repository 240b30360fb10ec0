"""The planner against a real SQLite catalog and real vaults: exactly once, restarts,
no backfill, windows, lifecycle (cold, expiry with prune), the stepping test clock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snowvault.control import catalog
from snowvault.control.scheduler import planner, runner, simulation
from snowvault.control.services import (
    plans,
    recovery_points,
    resources,
    scheduling,
    selections,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.core.clock import SystemClock
from snowvault.core.errors import InvalidInput
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/backup"
TAG = {"Backup": "true"}


def _dir(root: Path, name: str) -> str:
    path = root / name
    path.mkdir(parents=True)
    rng = random.Random(name)
    (path / "data.bin").write_bytes(rng.randbytes(4096))
    return str(path)


def _plan(deps: Deps, caller: Caller, **rule: Any) -> str:
    doc = {
        "BackupPlanName": "daily",
        "Rules": [
            {
                "RuleName": "nightly",
                "TargetBackupVaultName": "main",
                "ScheduleExpression": "cron(0 5 ? * * *)",
                "Lifecycle": {"DeleteAfterDays": 35},
                **rule,
            }
        ],
    }
    pid = str(plans.create(deps, caller, doc)["backup_plan_id"])
    selections.create(
        deps,
        caller,
        pid,
        {
            "SelectionName": "tagged",
            "IamRoleArn": ROLE,
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "Backup",
                    "ConditionValue": "true",
                }
            ],
        },
    )
    return pid


@pytest.fixture
def world(deps: Deps, caller: Caller, tmp_path: Path) -> tuple[str, list[str]]:
    vaults.create(deps, caller, "main")
    arns = [
        resources.register(
            deps,
            caller,
            resource_type="Directory",
            name=name,
            source=_dir(tmp_path, name),
            tags=tags,
        )["arn"]
        for name, tags in (("a", TAG), ("b", TAG), ("c", {"Backup": "no"}))
    ]
    return _plan(deps, caller), arns


def _jobs(deps: Deps) -> list[dict[str, Any]]:
    with catalog.db.transaction(deps.engine) as conn:
        page = catalog.jobs.list_jobs(conn, region="us-east-1", account_ids=["111122223333"])
    return page.items


def test_one_job_per_resource_per_occurrence_however_often_planned(
    deps: Deps, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    pid, (a, b, _c) = world
    other_server = replace(deps, engine=catalog.db.create_engine(str(deps.engine.url)))
    for day in (2, 3, 4):
        clock.set(datetime(2026, 1, day, 6, tzinfo=UTC))
        for d in (deps, other_server, deps):
            planner.tick(d)
    other_server.engine.dispose()
    jobs = _jobs(deps)
    assert sorted(j.resource_arn for j in jobs) == sorted([a, b] * 3)
    scheduled = sorted(j.start_by - timedelta(hours=8) for j in jobs)
    assert scheduled[::2] == [datetime(2026, 1, d, 5, tzinfo=UTC) for d in (2, 3, 4)]
    job = jobs[0]
    assert job.backup_plan_id == pid
    assert job.backup_rule_id and job.backup_plan_version
    assert job.expected_completion_date - job.start_by == timedelta(minutes=10080 - 480)
    assert job.iam_role_arn == ROLE
    assert job.created_by["BackupPlanId"] == pid


def test_no_backfill_beyond_the_start_window(
    deps: Deps, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    clock.advance(timedelta(days=3, hours=4))  # down since new year: 2026-01-04 04:00
    assert planner.tick(deps).jobs_created == []
    clock.set(datetime(2026, 1, 4, 12, tzinfo=UTC))  # 05:00 is 7 h ago: still startable
    created = planner.tick(deps).jobs_created
    assert len(created) == 2
    clock.set(datetime(2026, 1, 5, 14, tzinfo=UTC))  # 9 h after 05:00: window closed
    assert planner.tick(deps).jobs_created == []


def test_resource_tagged_later_is_picked_up_at_the_next_run(
    deps: Deps, caller: Caller, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    _pid, (_a, _b, c) = world
    clock.set(datetime(2026, 1, 1, 6, tzinfo=UTC))
    planner.tick(deps)
    resources.tag(deps, caller, c, TAG)
    clock.set(datetime(2026, 1, 2, 6, tzinfo=UTC))
    planner.tick(deps)
    by_day = sorted((j.start_by.day, j.resource_arn == c) for j in _jobs(deps))
    assert by_day.count((1, True)) == 0
    assert by_day.count((2, True)) == 1


def test_unstarted_job_expires_and_late_job_is_asked_to_stop(
    deps: Deps, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    clock.set(datetime(2026, 1, 1, 5, 1, tzinfo=UTC))
    first, second = sorted(planner.tick(deps).jobs_created)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.jobs.update(conn, first, state="RUNNING", start_date=clock.now())
    clock.set(datetime(2026, 1, 1, 13, 0, tzinfo=UTC))  # exactly StartBy
    clock.advance(1)
    result = planner.tick(deps)
    assert result.jobs_expired == [second]
    clock.set(datetime(2026, 1, 8, 5, 0, tzinfo=UTC))  # the completion window ends
    assert planner.tick(deps).jobs_aborting == [first]
    states = {j.job_id: j.state for j in _jobs(deps)}
    assert (states[first], states[second]) == ("ABORTING", "EXPIRED")


def test_deleted_plan_and_updated_plan_plan_correctly(
    deps: Deps, caller: Caller, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    pid, _ = world
    clock.set(datetime(2026, 1, 1, 6, tzinfo=UTC))
    assert len(planner.tick(deps).jobs_created) == 2
    doc = plans.get(deps, caller, pid)["document"]
    plans.update(deps, replace(caller, now=clock.now()), pid, doc)  # same rule, new version
    assert planner.tick(deps).jobs_created == []  # the occurrence is not planned twice
    for sel in selections.list_selections(deps, caller, pid).items:
        selections.delete(deps, caller, pid, sel["selection_id"])
    plans.delete(deps, caller, pid)
    clock.set(datetime(2026, 1, 2, 6, tzinfo=UTC))
    assert planner.tick(deps).jobs_created == []


def _worker(deps: Deps) -> runner.Worker:
    return runner.Worker(deps, runner.WorkerOptions(threads=0, lease_seconds=60))


def test_a_month_on_the_stepping_clock_then_expiry_and_prune(
    deps: Deps, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    settable = simulation.SettableClock(clock.now(), SystemClock())
    deps = replace(deps, clock=settable)
    worker = _worker(deps)
    run = simulation.advance(
        deps, settable, datetime(2026, 1, 31, 12, tzinfo=UTC), lambda: simulation.drain(worker)
    )
    assert run.jobs_run == 62  # 31 days (Jan 1..31, 05:00) x 2 tagged resources
    jobs = _jobs(deps)
    assert len(jobs) == 62 and {j.state for j in jobs} == {"COMPLETED"}
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get(conn, account_id="111122223333", region="us-east-1", name="main")
        assert catalog.recovery_points.count_in_vault(conn, vault["arn"]) == 62
    # day 36 after the first backup: the 2026-01-01 points expire, their data is pruned
    run = simulation.advance(
        deps, settable, datetime(2026, 2, 5, 5, 30, tzinfo=UTC), lambda: simulation.drain(worker)
    )
    assert len(run.ticks.recovery_points_expired) == 2
    with catalog.db.transaction(deps.engine) as conn:
        assert catalog.recovery_points.count_in_vault(conn, vault["arn"]) == 62 + 10 - 2
        records = catalog.schedule_runs.list_lifecycle_runs(conn)
    assert {(r["action"], r["status"]) for r in records} == {("EXPIRE", "COMPLETED")}
    with vaults.open_repository(deps, vault) as repo:
        assert len(repo.list_manifests()) == 70
    with catalog.db.transaction(deps.engine) as conn:
        assert catalog.maintenance.due_prunes(conn) == []  # the prune ran in the tick


def test_cold_transition_is_recorded(
    deps: Deps, caller: Caller, tmp_path: Path, clock: FakeClock
) -> None:
    vaults.create(deps, caller, "main")
    resources.register(
        deps, caller, resource_type="Directory", name="x", source=_dir(tmp_path, "x"), tags=TAG
    )
    _plan(deps, caller, Lifecycle={"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 91})
    settable = simulation.SettableClock(clock.now(), SystemClock())
    deps = replace(deps, clock=settable)
    worker = _worker(deps)
    simulation.advance(
        deps, settable, datetime(2026, 1, 2, 6, tzinfo=UTC), lambda: simulation.drain(worker)
    )
    with catalog.db.transaction(deps.engine) as conn:
        records = catalog.schedule_runs.list_lifecycle_runs(conn)
        rp = catalog.recovery_points.get(conn, records[0]["recovery_point_arn"])
    assert [(r["action"], r["due_at"]) for r in records] == [
        ("COLD", datetime(2026, 1, 2, 5, tzinfo=UTC))
    ]
    assert rp.storage_class == "COLD"


def test_settable_clock_never_goes_back(clock: FakeClock) -> None:
    settable = simulation.SettableClock(clock.now(), SystemClock())
    settable.set(clock.now() + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="backwards"):
        settable.set(clock.now())
    assert settable.now() == clock.now() + timedelta(hours=1)


def test_next_event_skips_the_past(deps: Deps, world: tuple[str, list[str]]) -> None:
    after = datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert scheduling.next_event(deps, after=after - timedelta(seconds=1)) == after


def test_scheduled_recovery_points_carry_their_plan(
    deps: Deps, caller: Caller, world: tuple[str, list[str]], clock: FakeClock
) -> None:
    pid, (a, b, _c) = world
    settable = simulation.SettableClock(clock.now(), SystemClock())
    deps = replace(deps, clock=settable)
    simulation.advance(
        deps, settable, datetime(2026, 1, 1, 6, tzinfo=UTC), lambda: simulation.drain(_worker(deps))
    )
    by_plan = catalog.recovery_points.RecoveryPointFilters(backup_plan_id=pid)
    points = recovery_points.list_by_vault(deps, caller, "main", by_plan).items
    assert sorted(p.resource_arn for p in points) == sorted([a, b])
    job = _jobs(deps)[0]
    assert points[0].created_by == {
        "BackupPlanId": pid,
        "BackupPlanArn": job.backup_plan_arn,
        "BackupPlanVersion": job.backup_plan_version,
        "BackupRuleId": job.backup_rule_id,
    }
    other = catalog.recovery_points.RecoveryPointFilters(backup_plan_id="no-such-plan")
    assert recovery_points.list_by_vault(deps, caller, "main", other).items == []
