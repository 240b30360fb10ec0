"""The cost report over real vaults (SQLite catalog, local storage, FakeClock): each
point is charged its share of the stored bytes at its storage class's price; unique
bytes are what only it holds; the report groups by vault, storage class and more."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import service_world as world
from snowvault.control.model import cost as model
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, cost, resources, vaults
from snowvault.control.services.base import Deps
from snowvault.engine import usage
from snowvault.testing import FakeClock

REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock)
    yield deps
    deps.engine.dispose()


def test_points_are_charged_their_share_at_their_storage_class(
    deps: Deps, clock: FakeClock, tmp_path: Path
) -> None:
    caller = world.root_caller(deps)
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(2)
    for i in range(4):
        (src / f"f{i}").write_bytes(rng.randbytes(50_000))
    vault = vaults.create(deps, caller, "main")
    arn = resources.register(deps, caller, resource_type="Directory", name="s", source=str(src))
    worker = runner.Worker(deps, runner.WorkerOptions(threads=0))
    cold_soon = {"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 120}
    for lifecycle in (cold_soon, None):
        request = backup_jobs.StartRequest("main", str(arn["arn"]), ROLE, lifecycle=lifecycle)
        backup_jobs.start(deps, caller, request)
        assert worker.run_once() == "COMPLETED"
        (src / "f0").write_bytes(rng.randbytes(50_000))  # one file of four changes

    prices = model.PriceTable.parse({"WARM": 1.0, "COLD": 0.25})
    now = clock.now()
    points = cost.report(deps, now, prices)
    assert len(points) == 2 and {p.storage_class for p in points} == {"WARM"}
    with vaults.open_repository(deps, vault) as repo:
        total = usage.repository_usage(repo).referenced_bytes
    assert sum(p.attributed_bytes for p in points) == pytest.approx(total)
    assert all(0 < p.unique_bytes < p.referenced_bytes for p in points)
    assert sum(p.monthly_cost for p in points) == pytest.approx(total / model.GB * 1.0)

    later = cost.report(deps, now + timedelta(days=2), prices)
    by_class = {line.key: line for line in model.group(later, "storage-class")}
    assert set(by_class) == {"WARM", "COLD"}
    cold = by_class["COLD"]
    assert cold.monthly_cost == pytest.approx(cold.attributed_bytes / model.GB * 0.25)
    [line] = model.group(later, "vault")
    assert (line.key, line.points) == (f"{ACCOUNT}/{REGION}/main", 2)
    assert cost.report(deps, now, prices, account_id="999999999999") == []


def test_the_report_has_gb_months_warm_and_cold_and_the_gb_restored_and_copied(
    deps: Deps, clock: FakeClock, tmp_path: Path
) -> None:
    from snowvault.control.services import copy_jobs, restore_jobs
    from snowvault.interfaces.cli import cost_cmd

    caller = world.root_caller(deps)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(random.Random(3).randbytes(80_000))
    vaults.create(deps, caller, "main")
    other = vaults.create(deps, caller, "other")
    arn = resources.register(deps, caller, resource_type="Directory", name="s", source=str(src))
    worker = runner.Worker(deps, runner.WorkerOptions(threads=0))
    cold_soon = {"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 120}
    request = backup_jobs.StartRequest("main", str(arn["arn"]), ROLE, lifecycle=cold_soon)
    job = backup_jobs.start(deps, caller, request)
    assert worker.run_once() == "COMPLETED"
    rp = backup_jobs.get(deps, caller, job.job_id).recovery_point_arn or ""
    target = tmp_path / "back"
    restore_jobs.start(deps, caller, recovery_point_arn=rp, metadata={"targetPath": str(target)})
    assert worker.run_once() == "COMPLETED"
    warm = {"DeleteAfterDays": 30}  # the copy's own lifecycle: it stays warm
    copy_jobs.start(
        deps, caller, copy_jobs.StartRequest(rp, "main", str(other["arn"]), lifecycle=warm)
    )
    assert worker.run_once() == "COMPLETED"

    prices = model.PriceTable.parse({"WARM": 1.0, "COLD": 0.25})
    later = clock.now() + timedelta(days=2)  # the point is cold by then, its copy warm
    points = cost.report(deps, later, prices)
    moved = cost.transfers(deps)
    assert {t.kind for t in moved} == {"restore", "copy"}
    assert all(t.bytes > 0 for t in moved)
    rows = {row["key"]: row for row in cost_cmd.lines(points, "vault", moved)}
    main, copy = rows[f"{ACCOUNT}/{REGION}/main"], rows[f"{ACCOUNT}/{REGION}/other"]
    assert main["restore_bytes"] == next(t.bytes for t in moved if t.kind == "restore")
    assert main["copy_bytes"] == next(t.bytes for t in moved if t.kind == "copy")  # at source
    assert copy["restore_bytes"] == copy["copy_bytes"] == 0
    assert main["warm_gb_months"] == 0 and main["cold_gb_months"] > 0
    assert copy["warm_gb_months"] > 0 and copy["cold_gb_months"] == 0
    gb = sum(p.attributed_bytes for p in points if p.vault_name == "main") / model.GB
    assert main["cold_gb_months"] == pytest.approx(gb, abs=1e-6)  # rounded to 6 places
    # a month before anything happened has no transfers
    assert cost.transfers(deps, month=model.parse_month("2001-01")) == []
