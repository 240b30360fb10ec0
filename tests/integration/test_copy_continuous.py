"""A copy of a CONTINUOUS PostgreSQL point is a SNAPSHOT (AWS's rule), through the
services and a real worker: the chain's newest base backup is copied into a vault of
another region, the copy has no window and the base backup's end as its CreationDate,
and it restores like any snapshot point of the PostgreSQL plugin (``targetDirectory``)
to a cluster holding the rows of that base backup and none written after it, and
(``targetDsn`` + ``databases``) database by database into the machine's PostgreSQL on
127.0.0.1:5432 (trust, user postgres, as in CI).

One tiny cluster (tests/helpers/pg_cluster.py); the supervisor's passes are driven by
the test (``Streamers.tick``), as in test_postgresql_pitr.py. The copy with no base
backup yet is in test_copy_jobs.py (``test_refused_at_the_call_cold_foreign_or_unknown``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from helpers.pg_cluster import PgCluster
from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_catalog
from snowvault.control.model import continuous as continuous_rules
from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    accounts,
    continuous,
    copy_jobs,
    plans,
    resources,
    restore_jobs,
    selections,
    vaults,
)
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.engine import crypto
from snowvault.testing import FakeClock, ServerVaultKeys

ROOT = b"q" * 32
EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "111122223333"
PASSWORD = "copy-pitr-secret"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        pg.create_role("backup", PASSWORD, replication=True)
        pg.execute("GRANT pg_read_all_data TO backup")
        pg.execute("CREATE DATABASE shop")
        pg.execute(
            "CREATE TABLE rows_ (batch text, n int);"
            "INSERT INTO rows_ SELECT 'base', g FROM generate_series(1, 500) g;",
            db="shop",
        )
        yield pg


@pytest.fixture
def world(cluster: PgCluster) -> Iterator[World]:
    w = World(cluster)
    yield w
    w.streamers.stop()
    shutil.rmtree(w.base, ignore_errors=True)


class World:
    """A catalog with one account in two regions: the continuous rule's vault in EAST
    (with a CopyAction into WEST) selecting the cluster."""

    def __init__(self, cluster: PgCluster) -> None:
        self.base = tempfile.mkdtemp(prefix="sv-copy-pitr-")
        os.chmod(self.base, 0o755)  # the postgres user enters restored directories under it
        engine = catalog.db.create_engine(f"sqlite:///{self.base}/catalog.db")
        catalog.db.upgrade(engine)
        self.clock = FakeClock(cluster.execute("SELECT clock_timestamp()")[0][0])
        storage = {r: f"{self.base}/storage/{r}" for r in (EAST, WEST)}
        policy = host_paths.Policy.build(
            [self.base], [], [f"{self.base}/storage"], os.path.realpath
        )
        self.deps = Deps(
            engine,
            self.clock,
            Storage(storage),
            ServerVaultKeys(ROOT),
            path_policy=policy,
            resource_secrets=crypto.SecretBox(ROOT, "resource-secrets"),
        )
        root = accounts.bootstrap(
            engine, crypto.SecretBox(ROOT, "access-keys"), now=self.clock.now(), account_id=ACCOUNT
        )
        self.east = Caller(ACCOUNT, EAST, root.principal_arn, self.clock.now())
        self.west = replace(self.east, region=WEST)
        self.vault = vaults.create(self.deps, self.east, "pitr")
        self.dr = vaults.create(self.deps, self.west, "dr")
        arn = resources.register(
            self.deps,
            self.east,
            resource_type="PostgreSQL",
            name="src",
            source=cluster.dsn("backup", PASSWORD),
        )["arn"]
        plan = plans.create(
            self.deps,
            self.east,
            {
                "BackupPlanName": "pitr",
                "Rules": [
                    {
                        "RuleName": "continuous",
                        "TargetBackupVaultName": "pitr",
                        "ScheduleExpression": "cron(0 5 ? * * *)",
                        "EnableContinuousBackup": True,
                        "Lifecycle": {"DeleteAfterDays": 3},
                        "CopyActions": [{"DestinationBackupVaultArn": self.dr["arn"]}],
                    }
                ],
            },
        )
        selections.create(
            self.deps,
            self.east,
            plan["backup_plan_id"],
            {"SelectionName": "src", "IamRoleArn": ROLE, "Resources": [arn]},
        )
        self.streamers = continuous.Streamers(self.deps, f"{self.base}/spool")

    def worker(self) -> runner.Worker:
        return runner.Worker(self.deps, runner.WorkerOptions(threads=0, worker_id="w1"))

    def point(self) -> continuous_catalog.ContinuousPoint:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            (found,) = continuous_catalog.list_points(conn)
        return found

    def newest_base(self, rp_arn: str) -> continuous_rules.Piece:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            return continuous_rules.bases(continuous_catalog.pieces(conn, rp_arn))[-1]


ROWS = "SELECT batch, count(*) FROM rows_ GROUP BY batch ORDER BY 1"
TARGET = "postgresql://postgres@127.0.0.1:5432"
"""The CI's (and this machine's) PostgreSQL: a targetDsn restore copies a database there."""


def _rows(cluster: PgCluster) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = cluster.execute(ROWS, "shop")
    return rows


def _restore(world: World, rp_arn: str, metadata: dict[str, str]) -> Any:
    job = restore_jobs.start(world.deps, world.west, recovery_point_arn=rp_arn, metadata=metadata)
    assert world.worker().run_once() is not None
    return restore_jobs.get(world.deps, world.west, job.restore_job_id)


def test_a_copy_of_a_continuous_point_is_a_snapshot_of_its_newest_base_backup(
    world: World, cluster: PgCluster
) -> None:
    world.streamers.tick()  # the point, its slot and streamer, the first base backup
    source = world.point().recovery_point_arn
    base = world.newest_base(source)
    with catalog.db.read_transaction(world.deps.engine) as conn:  # the rule's CopyAction
        queued = catalog.copy_jobs.list_jobs(
            conn,
            region=EAST,
            account_ids=[ACCOUNT],
            filters=catalog.copy_jobs.CopyJobFilters(),
        ).items
    assert [j.source_recovery_point_arn for j in queued] == [source]
    cluster.execute("INSERT INTO rows_ SELECT 'later', g FROM generate_series(1, 7) g", "shop")
    world.streamers.tick(ship=True)  # the later rows are in the chain's WAL, not its base
    assert world.point().window is not None

    # on demand too: StartCopyJob accepts a continuous point
    asked = copy_jobs.start(
        world.deps,
        replace(world.east, now=world.clock.now()),
        copy_jobs.StartRequest(source, "pitr", world.dr["arn"], ROLE),
    )
    assert world.worker().run_once() == "COMPLETED"  # the CopyAction's job
    assert world.worker().run_once() == "COMPLETED"  # the on-demand one
    job = copy_jobs.get(world.deps, world.east, asked.copy_job_id)
    assert job.state == "COMPLETED" and job.backup_size_in_bytes == base.size

    copied = job.destination_recovery_point_arn
    with catalog.db.read_transaction(world.deps.engine) as conn:
        point = catalog.recovery_points.get(conn, copied)
    assert continuous.find(world.deps, copied) is None  # a SNAPSHOT: no chain, no window
    assert continuous.window_field(world.deps, copied) is None
    assert (point.region, point.backup_vault_name, point.status) == (WEST, "dr", "COMPLETED")
    assert point.creation_date == base.end_time  # the cluster as the base backup ended
    assert point.backup_size_in_bytes == base.size
    assert point.status_message is not None and point.status_message.startswith("SNAPSHOT copy")
    assert point.calculated_lifecycle.delete_at is not None
    assert (point.calculated_lifecycle.delete_at - base.end_time).days == 3

    target = os.path.join(world.base, "restored")
    done = _restore(world, copied, {"targetDirectory": target})
    assert done.status == "COMPLETED", done.status_message
    restored = PgCluster.adopt(target).start()
    try:
        assert _rows(restored) == [("base", 500)]  # the base backup's rows, not the later
    finally:
        restored.cleanup()
    assert _rows(cluster) == [("base", 500), ("later", 7)]

    # the snapshot's notes came along: one database into a running server, renamed
    name = f"sv_copied_{uuid.uuid4().hex[:8]}"
    try:
        done = _restore(world, copied, {"targetDsn": TARGET, "databases": "shop", "renameTo": name})
        assert done.status == "COMPLETED", done.status_message
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}") as conn:
            assert conn.execute(ROWS).fetchall() == [("base", 500)]
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
