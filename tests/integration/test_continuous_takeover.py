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
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers.pg_cluster import PgCluster
from helpers.pitr_world import PASSWORD, PitrWorld, batch
from snowvault.control import catalog
from snowvault.control.catalog import leadership
from snowvault.control.services import continuous
from snowvault.plugins import postgresql_wal as pg


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


class World(PitrWorld):
    def __init__(self, workdir: str, cluster: PgCluster) -> None:
        super().__init__(workdir, cluster)
        self.servers: list[Server] = []

    def server(self, name: str) -> Server:
        """One more server of the fleet: its own spool and its own roles (as its own
        process would have), on the same catalog."""
        roles = leadership.Leadership(self.deps.engine, f"{self.base}/roles")
        spool = f"{self.base}/{name}-spool"
        server = Server(continuous.Streamers(self.deps, spool, roles=roles), roles)
        self.servers.append(server)
        return server


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


def test_one_receiver_per_point_and_a_takeover_that_loses_nothing(world: World) -> None:
    a, b = world.server("a"), world.server("b")
    served_a = a.streamers.tick()
    assert served_a == [world.point().recovery_point_arn]
    assert b.streamers.tick() == []  # the point is a's: b neither streams nor stops it
    arn = served_a[0]
    assert b.streamers.streamer(arn) is None
    with catalog.db.read_transaction(world.deps.engine) as conn:
        assert catalog.recovery_points.get(conn, arn).status != "STOPPED"
    batch(world.cluster, "before")
    a.streamers.tick(ship=True)

    a.die()  # a's spool stays where it was; nobody ships it
    batch(world.cluster, "after")  # committed while no server streams: the slot keeps it
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
    batch(world.cluster, "lost")
    world.cluster.execute("SELECT pg_switch_wal()")  # a receives and confirms the segment
    batch(world.cluster, "next")
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
    batch(world.cluster, "after-gap")
    b.streamers.tick(ship=True)
    rows = world.restore_and_query(None, "SELECT count(*) FROM batches WHERE name = 'after-gap'")
    assert rows == [(100,)]
