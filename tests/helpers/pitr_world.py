"""A continuous-backup world for the PostgreSQL PITR tests: one cluster with a
replication role, deps on a FakeClock set to the cluster's clock, a vault, the cluster
registered as a resource and a plan whose continuous rule selects it; restores started
as a real cluster on a free port and queried. The tests add their own streamers (one
supervisor, or one per "server" of a fleet).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any

from helpers import service_world
from helpers.pg_cluster import PgCluster
from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_catalog
from snowvault.control.services import continuous, plans, resources, selections, vaults
from snowvault.control.services.base import Caller
from snowvault.testing import FakeClock

REGION = "us-east-1"
PASSWORD = "pitr-secret"
ACCOUNT = "111122223333"
ROLE = "arn:aws:iam::111122223333:role/x"


def cluster_now(cluster: PgCluster) -> Any:
    return cluster.execute("SELECT clock_timestamp()")[0][0]


def batch(cluster: PgCluster, name: str) -> None:
    """A hundred rows named ``name``, stamped with the cluster's clock."""
    cluster.execute(
        "CREATE TABLE IF NOT EXISTS batches (name text, at timestamptz DEFAULT clock_timestamp())"
    )
    cluster.execute(f"INSERT INTO batches (name) SELECT '{name}' FROM generate_series(1, 100)")


class PitrWorld:
    def __init__(self, workdir: str, cluster: PgCluster) -> None:
        self.cluster = cluster
        base = tempfile.mkdtemp(prefix="world-", dir=workdir)
        os.chmod(base, 0o755)  # restored directories under it are the postgres user's
        self.base = base
        self.clock = FakeClock(cluster_now(cluster))
        self.deps = service_world.make_deps(base, self.clock)
        root = service_world.root_caller(self.deps, region=REGION)
        self.caller_of = lambda: dataclasses.replace(root, now=self.clock.now())
        self.vault = vaults.create(self.deps, self.caller(), "pitr")
        row = resources.register(  # the password is split off and sealed
            self.deps,
            self.caller(),
            resource_type="PostgreSQL",
            name="src",
            source=cluster.dsn("backup", PASSWORD),
        )
        self.resource_arn: str = row["arn"]
        plan = plans.create(
            self.deps,
            self.caller(),
            {
                "BackupPlanName": "pitr",
                "Rules": [
                    {
                        "RuleName": "continuous",
                        "TargetBackupVaultName": "pitr",
                        "ScheduleExpression": "cron(0 5 ? * * *)",
                        "EnableContinuousBackup": True,
                        "Lifecycle": {"DeleteAfterDays": 1},
                    }
                ],
            },
        )
        selections.create(
            self.deps,
            self.caller(),
            plan["backup_plan_id"],
            {"SelectionName": "src", "IamRoleArn": ROLE, "Resources": [self.resource_arn]},
        )

    def caller(self) -> Caller:
        return self.caller_of()

    def point(self) -> continuous_catalog.ContinuousPoint:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            found = continuous_catalog.find_for(conn, self.resource_arn, self.vault["arn"])
        assert found is not None
        return found

    def restore_and_query(self, when: str | None, query: str) -> list[tuple[Any, ...]]:
        """Restore the continuous point (to ``when``, else its latest), start it, wait
        for its promotion and answer ``query`` on it."""
        target = tempfile.mkdtemp(prefix="restored-", dir=self.base)
        meta = {"targetDirectory": target}
        if when is not None:
            meta["pointInTime"] = when
        arn = self.point().recovery_point_arn
        continuous.check_restore(self.deps, arn, meta)
        with catalog.db.read_transaction(self.deps.engine) as conn:
            rp = catalog.recovery_points.get(conn, arn)
        continuous.restore(self.deps, rp, self.vault, meta, lambda p: None)
        restored = PgCluster.adopt(target).start()
        try:
            deadline = time.monotonic() + 30
            while restored.execute("SELECT pg_is_in_recovery()")[0][0]:
                assert time.monotonic() < deadline, "the restored cluster was never promoted"
                time.sleep(0.1)
            return restored.execute(query)
        finally:
            restored.cleanup()
            shutil.rmtree(target, ignore_errors=True)
