"""Groups (Composite) through the services with a FakeClock and Directory members: one
parent job and point, one child job and nested point per member, the ByParent filters,
PARTIAL/FAILED outcomes, a busy member, a lost parent worker, deletion with Vault Lock
and legal holds over parent and children, and restoring chosen members."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import service_world as world
from helpers.catalog_db import pg_admin
from snowvault.control import catalog
from snowvault.control.model import legal_holds as hold_model
from snowvault.control.scheduler import planner, runner
from snowvault.control.services import (
    backup_jobs,
    composite,
    legal_holds,
    plans,
    recovery_points,
    resources,
    restore_jobs,
    selections,
    vault_lock,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import JobStopped, LegalHoldActive, VaultLocked
from snowvault.core.errors import Conflict, InvalidInput
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"
Filters = catalog.recovery_points.RecoveryPointFilters


@pytest.fixture
def deps(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    """A SQLite catalog; ``postgresql`` (indirect parameter): a fresh PostgreSQL one."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    pg = getattr(request, "param", "sqlite") == "postgresql"
    if pg:
        name = f"snowvault_composite_{uuid.uuid4().hex[:12]}"
        pg_admin(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = catalog.db.create_engine(url)
    catalog.db.upgrade(engine)
    yield world.make_deps(tmp_path, clock, engine=engine)
    engine.dispose()
    if pg:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return world.root_caller(deps)


def _member(deps: Deps, caller: Caller, tmp_path: Path, name: str, size: int) -> str:
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / "data").write_bytes(bytes([len(name)]) * size)
    row = resources.register(deps, caller, resource_type="Directory", name=name, source=str(src))
    return str(row["arn"])


def _group(deps: Deps, caller: Caller, name: str, members: list[str], **kw: object) -> str:
    props = {"members": composite.json.dumps(members)}
    row = resources.register(
        deps,
        caller,
        resource_type="Composite",
        name=name,
        source=f"group:{name}",
        properties=props,
        **kw,  # type: ignore[arg-type]
    )
    return str(row["arn"])


def _world(deps: Deps, caller: Caller, tmp_path: Path) -> tuple[str, str, str]:
    vaults.create(deps, caller, "v")
    a = _member(deps, caller, tmp_path, "a", 3000)
    b = _member(deps, caller, tmp_path, "b", 5000)
    return a, b, _group(deps, caller, "app", [a, b])


def _run(deps: Deps) -> str | None:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def _backup(deps: Deps, caller: Caller, arn: str, days: int | None = None) -> str:
    lc = {"DeleteAfterDays": days} if days else None
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE, lifecycle=lc))
    assert job.is_parent
    return job.job_id


def _children(deps: Deps, caller: Caller, job_id: str) -> list[backup_jobs.BackupJob]:
    filters = catalog.jobs.BackupJobFilters(parent_job_id=job_id)
    return list(backup_jobs.list_jobs(deps, caller, filters).items)


@pytest.mark.parametrize("deps", ["sqlite", "postgresql"], indirect=True)
def test_group_backup_makes_a_parent_point_with_one_child_per_member(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    a, b, group = _world(deps, caller, tmp_path)
    job_id = _backup(deps, caller, group, days=10)
    assert _run(deps) == "COMPLETED"
    parent = backup_jobs.get(deps, caller, job_id)
    assert (parent.state, parent.is_parent, parent.backup_size_in_bytes) == (
        "COMPLETED",
        True,
        8000,
    )
    kids = _children(deps, caller, job_id)
    assert sorted(k.resource_arn for k in kids) == sorted([a, b])
    assert {(k.state, k.parent_job_id, k.is_parent) for k in kids} == {("COMPLETED", job_id, False)}
    assert composite.child_states(deps, caller, parent) == {"COMPLETED": 2}

    rp = recovery_points.get(deps, caller, "v", parent.recovery_point_arn)
    assert (rp.is_parent, rp.resource_type, rp.status, rp.engine_recovery_point_id) == (
        True,
        "Composite",
        "COMPLETED",
        None,
    )
    nested = recovery_points.list_by_vault(
        deps, caller, "v", Filters(parent_recovery_point_arn=rp.arn)
    ).items
    assert sorted((p.composite_member_identifier, p.resource_arn) for p in nested) == [
        ("directory/a", a),
        ("directory/b", b),
    ]
    assert {p.delete_at for p in nested} == {rp.delete_at} and rp.delete_at is not None
    assert {p.arn for p in nested} == {k.recovery_point_arn for k in kids}
    everything = recovery_points.list_by_vault(deps, caller, "v", Filters()).items
    assert len(everything) == 3


def test_a_failing_member_makes_the_group_partial_and_all_failing_makes_it_failed(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    (tmp_path / "src" / "b" / "data").unlink()
    (tmp_path / "src" / "b").rmdir()
    job_id = _backup(deps, caller, group)
    assert _run(deps) == "PARTIAL"
    parent = backup_jobs.get(deps, caller, job_id)
    assert parent.message_category == "PARTIAL" and "directory/b FAILED" in str(
        parent.status_message
    )
    assert recovery_points.get(deps, caller, "v", parent.recovery_point_arn).status == "PARTIAL"
    assert composite.child_states(deps, caller, parent) == {"COMPLETED": 1, "FAILED": 1}

    (tmp_path / "src" / "a" / "data").unlink()
    (tmp_path / "src" / "a").rmdir()
    again = _backup(deps, caller, group)
    assert _run(deps) == "FAILED"
    failed = backup_jobs.get(deps, caller, again)
    assert "no member was backed up" in str(failed.status_message)
    with pytest.raises(Exception, match="recovery point"):
        recovery_points.get(deps, caller, "v", failed.recovery_point_arn)


def test_a_member_already_being_backed_up_gets_a_failed_child(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", a, ROLE))
    assert backup_jobs.JOB_KIND.claim(deps, "other", [], 30.0) is not None  # a runs elsewhere
    job_id = _backup(deps, caller, group)
    assert _run(deps) == "PARTIAL"
    busy = [k for k in _children(deps, caller, job_id) if k.resource_arn == a]
    assert [(k.state, k.status_message) for k in busy] == [("FAILED", composite.BUSY_MESSAGE)]


def test_a_lost_parent_worker_ends_its_children(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    job_id = _backup(deps, caller, group)
    parent = backup_jobs.JOB_KIND.claim(deps, "dead", [], 10.0)
    assert parent is not None and parent.job_id == job_id
    running, ended = composite._start_children(deps, parent, "dead")  # then the worker dies
    assert len(running) == 2 and not ended
    with pytest.raises(Conflict, match="stop that"):  # a child stops with its parent only
        backup_jobs.stop(deps, caller, next(iter(running.values())).job_id)
    clock.advance(11)
    runner.Worker(deps, runner.WorkerOptions(worker_id="w1")).sweep_once()
    kids = _children(deps, caller, job_id)
    assert {(k.state, k.status_message) for k in kids} == {("FAILED", composite.LOST_MESSAGE)}
    assert backup_jobs.get(deps, caller, job_id).state == "PENDING"  # retried, new children
    assert _run(deps) == "COMPLETED"
    assert len(_children(deps, caller, job_id)) == 4


class _Stopped:
    """A job control whose job was asked to stop (StopBackupJob) before anything ran."""

    def report(self, **progress: object) -> None:
        raise JobStopped(job_id="parent", detail="stopped by request")


def test_a_stopped_parent_aborts_its_children_and_makes_no_composite_point(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    job_id = _backup(deps, caller, group)
    parent = backup_jobs.JOB_KIND.claim(deps, "w1", [], 30.0)
    assert parent is not None
    assert backup_jobs.JOB_KIND.execute(deps, parent, "w1", _Stopped()) == "ABORTED"
    assert {k.state for k in _children(deps, caller, job_id)} == {"ABORTED"}
    assert backup_jobs.get(deps, caller, job_id).state == "ABORTED"
    assert recovery_points.list_by_vault(deps, caller, "v", Filters()).items == []


def test_registration_checks_the_members(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    missing = a.replace("directory/a", "directory/nope")
    other = a.replace("111122223333", "444455556666")
    for members, words in [
        ([missing], "not a registered resource"),
        ([other], "not a registered resource"),
        ([group], "groups do not nest"),
        ([], "1 to 30 members"),
        ([a, a], "named twice"),
    ]:
        with pytest.raises(InvalidInput, match=words):
            _group(deps, caller, "bad", members)
    src = tmp_path / "src" / "pinned"
    src.mkdir()
    pinned = resources.register(
        deps, caller, resource_type="Directory", name="p", source=str(src), worker_label="h1"
    )["arn"]
    with pytest.raises(InvalidInput, match="WorkerLabel 'h1'"):
        _group(deps, caller, "bad", [a, pinned])
    assert _group(deps, caller, "ok", [a, pinned], worker_label="h1").endswith("group/ok")


def test_deleting_goes_parent_first_and_takes_the_children(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    _backup(deps, caller, group)
    assert _run(deps) == "COMPLETED"
    points = recovery_points.list_by_vault(deps, caller, "v", Filters()).items
    parent = next(p for p in points if p.is_parent)
    child = next(p for p in points if not p.is_parent)
    with pytest.raises(Conflict, match="nested in the composite"):
        recovery_points.delete(deps, caller, "v", child.arn)
    recovery_points.delete(deps, caller, "v", parent.arn)
    assert recovery_points.list_by_vault(deps, caller, "v", Filters()).items == []


def test_a_disassociated_child_stands_alone(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    _backup(deps, caller, group)
    assert _run(deps) == "COMPLETED"
    parent = _parent(deps, caller)
    child = next(
        p for p in recovery_points.list_by_vault(deps, caller, "v", Filters(resource_arn=a)).items
    )
    composite.disassociate(deps, caller, "v", child.arn)
    alone = recovery_points.get(deps, caller, "v", child.arn)
    assert (alone.parent_recovery_point_arn, alone.composite_member_identifier) == (None, None)
    with pytest.raises(Conflict, match="not nested"):
        composite.disassociate(deps, caller, "v", child.arn)
    nested = Filters(parent_recovery_point_arn=parent.arn)
    assert len(recovery_points.list_by_vault(deps, caller, "v", nested).items) == 1
    recovery_points.delete(deps, caller, "v", child.arn)  # on its own now
    recovery_points.delete(deps, caller, "v", parent.arn)
    assert recovery_points.list_by_vault(deps, caller, "v", Filters()).items == []


def _parent(deps: Deps, caller: Caller) -> recovery_points.jobs.RecoveryPoint:
    points = recovery_points.list_by_vault(deps, caller, "v", Filters()).items
    return next(p for p in points if p.is_parent)


def test_a_legal_hold_on_one_child_keeps_the_whole_group(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    _backup(deps, caller, group, days=30)
    assert _run(deps) == "COMPLETED"
    hold = legal_holds.create(
        deps,
        caller,
        title="t",
        description="d",
        selection=hold_model.Selection(resource_identifiers=(a,)),
    )
    with pytest.raises(LegalHoldActive):
        recovery_points.delete(deps, caller, "v", _parent(deps, caller).arn)
    assert len(recovery_points.list_by_vault(deps, caller, "v", Filters()).items) == 3
    legal_holds.cancel(deps, caller, hold["legal_hold_id"], "done", None)
    recovery_points.delete(deps, caller, "v", _parent(deps, caller).arn)
    assert recovery_points.list_by_vault(deps, caller, "v", Filters()).items == []


def test_vault_lock_keeps_the_parent_and_its_children(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    vault_lock.put(deps, caller, "v", min_days=7)
    _backup(deps, caller, group, days=30)
    assert _run(deps) == "COMPLETED"
    with pytest.raises(VaultLocked):
        recovery_points.delete(deps, caller, "v", _parent(deps, caller).arn)
    points = recovery_points.list_by_vault(deps, caller, "v", Filters()).items
    assert len(points) == 3 and {p.status for p in points} == {"COMPLETED"}


def test_restoring_a_group_point_restores_the_chosen_members(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    _a, _b, group = _world(deps, caller, tmp_path)
    _backup(deps, caller, group)
    assert _run(deps) == "COMPLETED"
    parent = _parent(deps, caller)
    defaults = recovery_points.restore_metadata(deps, caller, "v", parent.arn)
    assert defaults["directory/a.targetPath"] == str(tmp_path / "src" / "a")
    assert defaults["directory/b.overwrite"] == "false"
    with pytest.raises(InvalidInput, match="no member directory/zz"):
        restore_jobs.start(
            deps, caller, recovery_point_arn=parent.arn, metadata={"directory/zz.targetPath": "/x"}
        )
    out = tmp_path / "out-b"
    job = restore_jobs.start(
        deps,
        caller,
        recovery_point_arn=parent.arn,
        metadata={"directory/b.targetPath": str(out)},
    )
    clock.advance(timedelta(seconds=1))
    assert _run(deps) == "COMPLETED"
    assert (out / "data").read_bytes() == b"\x01" * 5000
    assert not (tmp_path / "out-a").exists()  # not named, not restored
    parent = restore_jobs.get(deps, caller, job.restore_job_id)
    assert (parent.is_parent, parent.bytes_transferred, parent.percent_done) == (True, 5000, 100)
    kids = restore_jobs.list_jobs(
        deps, caller, catalog.restore_jobs.RestoreJobFilters(parent_job_id=parent.id)
    ).items
    assert [(k.status, k.resource_type, k.metadata) for k in kids] == [
        ("COMPLETED", "Directory", {"targetPath": str(out)})
    ]
    assert kids[0].created_resource_arn is not None

    clash = restore_jobs.start(  # fine at the call; b's target fills up before the run
        deps,
        caller,
        recovery_point_arn=parent.recovery_point_arn,
        metadata={
            "directory/a.targetPath": str(tmp_path / "out-a"),
            "directory/b.targetPath": str(tmp_path / "later"),
        },
    )
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "y").write_bytes(b"y")
    assert _run(deps) == "FAILED"  # every member's part is checked again before any restore
    failed = restore_jobs.get(deps, caller, clash.restore_job_id)
    assert "is not empty" in str(failed.status_message)
    assert not (tmp_path / "out-a").exists()


def test_a_group_selected_by_tag_backs_up_as_a_group_and_a_tagged_member_alone_too(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    for arn in (group, a):
        resources.tag(deps, caller, arn, {"Backup": "true"})
    vaults.create(deps, caller, "main")  # plans want 2+ characters
    rule = {
        "RuleName": "r",
        "TargetBackupVaultName": "main",
        "ScheduleExpression": "cron(0 5 ? * * *)",
    }
    pid = str(
        plans.create(deps, caller, {"BackupPlanName": "p", "Rules": [rule]})["backup_plan_id"]
    )
    tag = {"ConditionType": "STRINGEQUALS", "ConditionKey": "Backup", "ConditionValue": "true"}
    selections.create(
        deps, caller, pid, {"SelectionName": "s", "IamRoleArn": ROLE, "ListOfTags": [tag]}
    )
    clock.set(datetime(2026, 1, 1, 6, tzinfo=UTC))
    planner.tick(deps)
    queued = backup_jobs.list_jobs(deps, caller, catalog.jobs.BackupJobFilters()).items
    assert sorted((j.resource_arn, j.is_parent) for j in queued) == sorted(
        [(group, True), (a, False)]
    )
    assert {_run(deps), _run(deps)} == {"COMPLETED"}
    points = recovery_points.list_by_resource(deps, caller, a, limit=None, token=None).items
    assert sorted(p.parent_recovery_point_arn is None for p in points) == [False, True]
    assert {p.backup_plan_id for p in points} == {pid}


def test_expiry_takes_the_group_and_a_held_child_outlives_it_standalone(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    a, _b, group = _world(deps, caller, tmp_path)
    _backup(deps, caller, group, days=1)
    assert _run(deps) == "COMPLETED"
    legal_holds.create(
        deps,
        caller,
        title="t",
        description="d",
        selection=hold_model.Selection(resource_identifiers=(a,)),
    )
    clock.advance(timedelta(days=2))
    runner.Worker(deps, runner.WorkerOptions(worker_id="w1")).sweep_once()
    left = recovery_points.list_by_vault(deps, caller, "v", Filters()).items
    assert [(p.resource_arn, p.parent_recovery_point_arn, p.is_parent) for p in left] == [
        (a, None, False)
    ]
