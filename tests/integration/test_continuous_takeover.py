"""Continuous backup on a fleet (docs/operations/scale-out.md): each continuous point's
WAL receiver runs on one server at a time (a catalog.leadership role); when its server
dies another takes the role, resumes from the replication slot, and either loses
nothing (the vault already had every segment before the slot's position) or says the
gap (a segment the dead server received but never shipped) and starts a new base.

Two "servers" are two Streamers in this process, each with its own spool and roles
(SQLite catalog: the roles are flocks, which two descriptors in one process contend
for as two processes do). A server's death is its streamers stopped and its roles
closed, its spool left where it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from helpers import service_world
from helpers.pg_cluster import PgCluster
from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_catalog
from snowvault.control.catalog import leadership
from snowvault.control.services import continuous, plans, resources, selections, vaults
from snowvault.control.services.base import Caller
from snowvault.plugins import postgresql_wal as pg
from snowvault.testing import FakeClock

REGION = "us-east-1"
PASSWORD = "pitr-secret"
ACCOUNT = "111122223333"
ROLE = "arn:aws:iam::111122223333:role/x"


@dataclass
class Server:
    streamers: continuous.Streamers
    roles: leadership.Leadership

    def die(self) -> None:
        self.streamers.stop()
        self.roles.close()


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="sv-pitr-")
    os.chmod(path, 0o755)  # the postgres user enters restored directories under it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        pg.create_role("backup", PASSWORD, replication=True)
        pg.execute("GRANT pg_read_all_data TO backup")
        yield pg


class World:
    def __init__(self, workdir: str, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.servers: list[Server] = []
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
        arn = row["arn"]
        self.resource_arn = arn
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
            {
                "SelectionName": "src",
                "IamRoleArn": "arn:aws:iam::111122223333:role/x",
                "Resources": [arn],
            },
        )

    def caller(self) -> Caller:
        return self.caller_of()

    def server(self, name: str) -> Server:
        """One more server of the fleet: its own spool and its own roles (as its own
        process would have), on the same catalog."""
        roles = leadership.Leadership(self.deps.engine, f"{self.base}/roles")
        spool = f"{self.base}/{name}-spool"
        server = Server(continuous.Streamers(self.deps, spool, roles=roles), roles)
        self.servers.append(server)
        return server

    def point(self) -> continuous_catalog.ContinuousPoint:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            found = continuous_catalog.find_for(conn, self.resource_arn, self.vault["arn"])
        assert found is not None
        return found

    def restore_and_query(self, when: str | None, query: str) -> list[tuple[Any, ...]]:
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


def cluster_now(cluster: PgCluster) -> Any:
    return cluster.execute("SELECT clock_timestamp()")[0][0]


@pytest.fixture
def world(workdir: str, cluster: PgCluster) -> Iterator[World]:
    w = World(workdir, cluster)
    yield w
    for server in w.servers:
        server.streamers.stop()
        server.roles.close()
    for slot in cluster.execute("SELECT slot_name FROM pg_replication_slots"):
        with contextlib.suppress(Exception):
            cluster.execute(f"SELECT pg_drop_replication_slot('{slot[0]}')")


def _batch(cluster: PgCluster, name: str) -> None:
    cluster.execute(
        "CREATE TABLE IF NOT EXISTS batches (name text, at timestamptz DEFAULT clock_timestamp())"
    )
    cluster.execute(f"INSERT INTO batches (name) SELECT '{name}' FROM generate_series(1, 100)")


def _batch(cluster: PgCluster, name: str) -> None:
    cluster.execute(
        "CREATE TABLE IF NOT EXISTS batches (name text, at timestamptz DEFAULT clock_timestamp())"
    )
    cluster.execute(f"INSERT INTO batches (name) SELECT '{name}' FROM generate_series(1, 100)")


def test_one_receiver_per_point_and_a_takeover_that_loses_nothing(world: World) -> None:
    a, b = world.server("a"), world.server("b")
    served_a = a.streamers.tick()
    assert served_a == [world.point().recovery_point_arn]
    assert b.streamers.tick() == []  # the point is a's: b neither streams nor stops it
    arn = served_a[0]
    assert b.streamers.streamer(arn) is None
    with catalog.db.read_transaction(world.deps.engine) as conn:
        assert catalog.recovery_points.get(conn, arn).status != "STOPPED"
    _batch(world.cluster, "before")
    a.streamers.tick(ship=True)

    a.die()  # a's spool stays where it was; nobody ships it
    _batch(world.cluster, "after")  # committed while no server streams: the slot keeps it
    assert b.streamers.tick(ship=True) == [arn]  # b takes the role and resumes
    streamer = b.streamers.streamer(arn)
    assert streamer is not None and streamer.alive()
    assert world.point().gap_message is None
    rows = world.restore_and_query(None, "SELECT name, count(*) FROM batches GROUP BY name")
    assert sorted(rows) == [("after", 100), ("before", 100)]


def test_a_segment_only_the_dead_server_had_is_said_as_a_gap(world: World) -> None:
    a, b = world.server("a"), world.server("b")
    (arn,) = a.streamers.tick(ship=True)
    point = world.point()
    _batch(world.cluster, "lost")
    world.cluster.execute("SELECT pg_switch_wal()")  # a receives and confirms the segment
    _batch(world.cluster, "next")
    world.cluster.execute("SELECT pg_switch_wal()")
    target_lsn = pg.parse_lsn(world.cluster.execute("SELECT pg_current_wal_lsn()::text")[0][0])
    deadline = time.monotonic() + 20
    while True:  # the slot moved past segments a never shipped
        rows = world.cluster.execute(
            "SELECT restart_lsn::text FROM pg_replication_slots "
            f"WHERE slot_name = '{point.slot_name}'"
        )
        if pg.parse_lsn(rows[0][0]) >= target_lsn:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)
    a.die()
    assert b.streamers.tick() == [arn]
    after = world.point()
    assert after.gap_message is not None
    assert "received by a server that stopped before shipping it" in after.gap_message
    with catalog.db.read_transaction(world.deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, arn)
    assert "WAL gap" in (rp.status_message or "")
    assert after.window is not None and point.window is not None
    assert after.window.earliest > point.window.latest  # a new base starts the window
    _batch(world.cluster, "after-gap")
    b.streamers.tick(ship=True)
    rows = world.restore_and_query(None, "SELECT count(*) FROM batches WHERE name = 'after-gap'")
    assert rows == [(100,)]
