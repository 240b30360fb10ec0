"""Scheduler tick at scale: 10,000 resources, 200 plans (not a test; prints figures).

    .venv/bin/python benchmarks/scheduler_bench.py [--resources N] [--plans N] [--dir DIR]

``--dir`` puts the SQLite catalog there (e.g. /dev/shm to take the disk out of the figure
on a machine whose disk is busy); default: a temporary directory.

Each plan has one daily rule and one selection by tag (``team=tN``), so every resource
is selected by exactly one plan; all rules fire at 05:00. Measures an idle tick (nothing
due) and the busy tick at 05:00 that creates one job per resource.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from snowvault.control import catalog
from snowvault.control.scheduler import planner
from snowvault.control.services import accounts, plans, selections, vaults
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.control.services.vault_keys import ServerVaultKeys
from snowvault.engine import crypto
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/backup"


def setup(root: Path, n_resources: int, n_plans: int) -> tuple[Deps, FakeClock]:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    engine = catalog.db.create_engine(f"sqlite:///{root / 'catalog.db'}")
    catalog.db.upgrade(engine)
    deps = Deps(engine, clock, Storage({"us-east-1": str(root / "s")}), ServerVaultKeys(b"k" * 32))
    creds = accounts.bootstrap(
        engine, crypto.SecretBox(b"k" * 32, "a"), now=clock.now(), account_id="111122223333"
    )
    caller = Caller(creds.account_id, "us-east-1", creds.principal_arn, clock.now())
    vaults.create(deps, caller, "main")
    with catalog.db.transaction(engine) as conn:
        for i in range(n_resources):
            arn = f"arn:aws:snowvault:us-east-1:111122223333:directory/r{i}"
            catalog.resources.register(
                conn,
                arn=arn,
                account_id=caller.account_id,
                region="us-east-1",
                resource_type="Directory",
                created_at=clock.now(),
                name=f"r{i}",
                source="/tmp",
            )
            catalog.tags.tag(conn, arn, {"team": f"t{i % n_plans}", "env": "prod"})
    for p in range(n_plans):
        doc = {
            "BackupPlanName": f"p{p}",
            "Rules": [
                {
                    "RuleName": "daily",
                    "TargetBackupVaultName": "main",
                    "ScheduleExpression": "cron(0 5 ? * * *)",
                    "Lifecycle": {"DeleteAfterDays": 35},
                }
            ],
        }
        pid = plans.create(deps, caller, doc)["backup_plan_id"]
        selections.create(
            deps,
            caller,
            pid,
            {
                "SelectionName": "s",
                "IamRoleArn": ROLE,
                "ListOfTags": [
                    {
                        "ConditionType": "STRINGEQUALS",
                        "ConditionKey": "team",
                        "ConditionValue": f"t{p}",
                    }
                ],
            },
        )
    return deps, clock


def timed(deps: Deps) -> tuple[float, planner.TickResult]:
    start = time.perf_counter()
    result = planner.tick(deps)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--dir", default=None, help="Where the catalog goes (default: tmp).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        deps, clock = setup(Path(tmp), args.resources, args.plans)
        clock.advance(timedelta(hours=4))
        idle, _ = timed(deps)
        clock.advance(timedelta(hours=1, minutes=1))
        busy, result = timed(deps)
        again, repeat = timed(deps)
        print(f"{args.resources} resources, {args.plans} plans (SQLite)")
        print(f"idle tick (nothing due):           {idle * 1000:8.1f} ms")
        print(f"busy tick ({len(result.jobs_created)} jobs created):   {busy * 1000:8.1f} ms")
        print(f"repeat tick (0 due, {len(repeat.jobs_created)} created): {again * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
