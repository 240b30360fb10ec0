"""The cost report's ``--by plan`` and ``--month YYYY-MM`` over a real vault (SQLite
catalog, local storage, FakeClock): points group under the plan that made them (``-``
for on-demand ones), and a month charges each point for the part of it the point is
stored, warm until its cold transition and cold after, until its DeleteAt."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import service_world as world
from snowvault.control import catalog
from snowvault.control.model import cost as model
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, cost, resources, vaults
from snowvault.control.services.base import Deps
from snowvault.core.errors import InvalidInput
from snowvault.testing import FakeClock

REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
PRICES = model.PriceTable.parse({"WARM": 1.0, "COLD": 0.25})


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock)
    yield deps
    deps.engine.dispose()


def test_by_plan_and_one_months_cost_by_lifecycle(
    deps: Deps, clock: FakeClock, tmp_path: Path
) -> None:
    caller = world.root_caller(deps)  # 2026-01-01
    rng = random.Random(5)
    made = []
    vaults.create(deps, caller, "main")
    for name, lifecycle in (
        ("a", {"MoveToColdStorageAfterDays": 10, "DeleteAfterDays": 100}),
        ("b", None),
    ):
        src = tmp_path / name
        src.mkdir()
        (src / "f").write_bytes(rng.randbytes(80_000))
        arn = resources.register(
            deps, caller, resource_type="Directory", name=name, source=str(src)
        )
        request = backup_jobs.StartRequest("main", str(arn["arn"]), ROLE, lifecycle=lifecycle)
        job = backup_jobs.start(deps, caller, request)
        assert runner.Worker(deps, runner.WorkerOptions(threads=0)).run_once() == "COMPLETED"
        made.append(backup_jobs.get(deps, caller, job.job_id).recovery_point_arn)
    planned, on_demand = made
    with catalog.db.transaction(deps.engine) as conn:  # as if a plan's rule had made it
        catalog.recovery_points.update(conn, planned, backup_plan_id="plan-1")

    now = clock.now()
    points = {p.recovery_point_arn: p for p in cost.report(deps, now, PRICES)}
    by_plan = {line.key: line for line in model.group(points.values(), "plan")}
    assert {k: v.points for k, v in by_plan.items()} == {"plan-1": 1, model.NO_PLAN: 1}

    january = cost.report(deps, now, PRICES, month=model.parse_month("2026-01"))
    jan = {p.recovery_point_arn: p for p in january}
    stored = points[planned].attributed_bytes
    # warm for 10 of January's 31 days, cold for the other 21
    assert jan[planned].monthly_cost == pytest.approx(stored / model.GB * (10 + 21 * 0.25) / 31)
    assert jan[planned].storage_class == "WARM+COLD"
    assert jan[on_demand].monthly_cost == pytest.approx(points[on_demand].monthly_cost)
    assert jan[on_demand].storage_class == "WARM"

    # April: cold until DeleteAt (day 100: April 11), then gone; May: only the other one
    april = {
        p.recovery_point_arn: p
        for p in cost.report(deps, now, PRICES, month=model.parse_month("2026-04"))
    }
    assert april[planned].monthly_cost == pytest.approx(stored / model.GB * 0.25 * 10 / 30)
    may = cost.report(deps, now, PRICES, month=model.parse_month("2026-05"))
    assert [p.recovery_point_arn for p in may] == [on_demand]
    assert cost.report(deps, now, PRICES, month=model.parse_month("2025-12")) == []
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        model.parse_month("2026-13")
