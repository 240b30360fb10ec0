"""Continuous backup and point-in-time restore of PostgreSQL, through the services.

One tiny cluster (fsync off, replication on a free loopback port, run as the
unprivileged server user) per module; the supervisor's passes are driven by the test
(``Streamers.tick``), segments forced with ``pg_switch_wal()``. Restores are started with
``pg_ctl`` as the server user on another free port and queried.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from helpers.pg_cluster import PgCluster
from helpers.pitr_world import ACCOUNT, PASSWORD, REGION, ROLE, PitrWorld, batch, cluster_now
from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_catalog
from snowvault.control.model import legal_holds as hold_rules
from snowvault.control.services import (
    continuous,
    legal_holds,
    plans,
    recovery_points,
    restore_jobs,
    selections,
    vault_lock,
    vaults,
)
from snowvault.control.services.errors import LegalHoldActive, VaultLocked
from snowvault.core.errors import InvalidInput


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
        self.streamers = continuous.Streamers(self.deps, f"{self.base}/spool")


@pytest.fixture(scope="module")
def world(workdir: str, cluster: PgCluster) -> Iterator[World]:
    w = World(workdir, cluster)
    yield w
    w.streamers.stop()


def test_pitr_to_a_second_between_two_batches(world: World) -> None:
    c = world.cluster
    world.streamers.tick()  # point, slot, streamer, first base backup, first shipment
    batch(c, "first")
    time.sleep(1.0)
    between = cluster_now(c)
    time.sleep(1.0)
    batch(c, "second")
    c.execute("SELECT pg_switch_wal()")
    world.streamers.tick(ship=True)
    point = world.point()
    assert point.window is not None and point.window.covers(between)
    with catalog.db.read_transaction(world.deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, point.recovery_point_arn)
    assert rp.status == "COMPLETED" and "restorable" in (rp.status_message or "")

    rows = world.restore_and_query(
        between.isoformat(), "SELECT name, count(*) FROM batches GROUP BY name ORDER BY name"
    )
    assert rows == [("first", 100)]

    # outside the window: refused at StartRestoreJob, naming the window
    too_late = (point.window.latest + timedelta(hours=1)).isoformat()
    with pytest.raises(InvalidInput, match="restorable window"):
        restore_jobs.start(
            world.deps,
            world.caller(),
            recovery_point_arn=point.recovery_point_arn,
            metadata={"targetDirectory": f"{world.base}/nowhere", "pointInTime": too_late},
        )
    meta = recovery_points.restore_metadata(
        world.deps, world.caller(), "pitr", point.recovery_point_arn
    )
    assert meta["pointInTime"].endswith("Z")


def test_streamer_killed_loses_no_committed_transaction(world: World) -> None:
    c = world.cluster
    world.streamers.tick(ship=True)
    first = world.streamers.streamer(world.point().recovery_point_arn)
    assert first is not None and first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    batch(c, "while-down")  # committed while nothing streams: the slot keeps it
    for _ in range(50):
        if not first.alive():
            break
        time.sleep(0.05)
    world.streamers.tick(ship=True)  # restarted, then shipped
    arn = world.point().recovery_point_arn
    assert world.streamers.restarts.get(arn) == 1
    assert world.point().gap_message is None
    rows = world.restore_and_query(None, "SELECT count(*) FROM batches WHERE name = 'while-down'")
    assert rows == [(100,)]


def test_one_continuous_point_per_resource_and_vault(world: World) -> None:
    world.streamers.tick()
    world.streamers.tick()
    page = recovery_points.list_by_vault(
        world.deps,
        world.caller(),
        "pitr",
        catalog.recovery_points.RecoveryPointFilters(resource_arn=world.resource_arn),
    )
    continuous_points = [p for p in page.items if continuous.find(world.deps, p.arn)]
    assert len(continuous_points) == 1


def test_window_moves_with_retention(world: World) -> None:
    world.streamers.tick(ship=True)
    before = world.point()
    with catalog.db.read_transaction(world.deps.engine) as conn:
        old_bases = [
            p
            for p in continuous_catalog.pieces(conn, before.recovery_point_arn)
            if p.kind == "base"
        ]
    world.streamers.tick(base_backup=True)
    time.sleep(0.3)
    batch(world.cluster, "after-new-base")
    world.streamers.tick(ship=True)
    latest = world.point().latest
    assert latest is not None
    # a day of retention later, all but the newest base backup before the cutoff go
    world.clock.set(latest + timedelta(days=1) - timedelta(milliseconds=100))
    world.streamers.tick()
    after = world.point()
    with catalog.db.read_transaction(world.deps.engine) as conn:
        kept = continuous_catalog.pieces(conn, after.recovery_point_arn)
    assert not {b.engine_id for b in old_bases} & {p.engine_id for p in kept}
    assert after.earliest is not None and before.earliest is not None
    assert after.earliest > before.earliest


def test_legal_hold_refuses_deleting_the_continuous_point(world: World) -> None:
    world.streamers.tick()
    arn = world.point().recovery_point_arn
    hold = legal_holds.create(
        world.deps,
        world.caller(),
        title="keep",
        description="litigation",
        selection=hold_rules.Selection(vault_names=("pitr",)),
    )
    try:
        with pytest.raises(LegalHoldActive):
            recovery_points.delete(world.deps, world.caller(), "pitr", arn)
        assert continuous.find(world.deps, arn) is not None
    finally:  # the module's other tests trim pieces; a hold would stop that
        legal_holds.cancel(world.deps, world.caller(), hold["legal_hold_id"], "done", None)


def test_vault_lock_refuses_deleting_a_continuous_point_made_under_it(world: World) -> None:
    caller = world.caller()
    vaults.create(world.deps, caller, "locked")
    vault_lock.put(world.deps, caller, "locked", min_days=1, max_days=30)
    plan = plans.create(
        world.deps,
        caller,
        {
            "BackupPlanName": "locked",
            "Rules": [
                {
                    "RuleName": "continuous-locked",
                    "TargetBackupVaultName": "locked",
                    "EnableContinuousBackup": True,
                    "Lifecycle": {"DeleteAfterDays": 2},
                }
            ],
        },
    )
    sel = selections.create(
        world.deps,
        caller,
        plan["backup_plan_id"],
        {"SelectionName": "src", "IamRoleArn": ROLE, "Resources": [world.resource_arn]},
    )
    try:
        served = world.streamers.tick()
        assert len(served) == 2  # one continuous point per vault for the one cluster
        with catalog.db.read_transaction(world.deps.engine) as conn:
            vault = catalog.vaults.get(conn, account_id=ACCOUNT, region=REGION, name="locked")
            point = continuous_catalog.find_for(conn, world.resource_arn, vault["arn"])
        assert point is not None
        with pytest.raises(VaultLocked):
            recovery_points.delete(world.deps, caller, "locked", point.recovery_point_arn)
        assert continuous.find(world.deps, point.recovery_point_arn) is not None
    finally:
        selections.delete(world.deps, caller, plan["backup_plan_id"], sel["selection_id"])
        plans.delete(world.deps, caller, plan["backup_plan_id"])
    world.streamers.tick()  # no rule selects the pair: STOPPED, its slot dropped
    with catalog.db.read_transaction(world.deps.engine) as conn:
        stopped = catalog.recovery_points.get(conn, point.recovery_point_arn)
    assert stopped.status == "STOPPED"
    slots = world.cluster.execute("SELECT slot_name FROM pg_replication_slots")
    assert (point.slot_name,) not in slots


def test_deleting_the_continuous_point_stops_it_and_drops_its_slot(world: World) -> None:
    world.streamers.tick()
    point = world.point()
    try:
        recovery_points.delete(world.deps, world.caller(), "pitr", point.recovery_point_arn)
        world.streamers.tick()
        assert continuous.find(world.deps, point.recovery_point_arn) is None
        with catalog.db.read_transaction(world.deps.engine) as conn:
            again = continuous_catalog.find_for(conn, world.resource_arn, world.vault["arn"])
        assert again is None  # AWS: deleting a continuous point stops future ones
        slots = world.cluster.execute("SELECT slot_name FROM pg_replication_slots")
        assert (point.slot_name,) not in slots
    finally:  # the module's other tests want a running continuous point again
        with catalog.db.transaction(world.deps.engine) as conn:
            catalog.settings.put(conn, continuous.STOPPED_KEY, {})
        world.streamers.tick()


def test_a_lost_slot_is_a_gap_said_in_the_status_and_a_new_base_starts_again(world: World) -> None:
    world.streamers.tick(ship=True)
    point = world.point()
    streamer = world.streamers.streamer(point.recovery_point_arn)
    assert streamer is not None and streamer.pid is not None
    os.kill(streamer.pid, signal.SIGKILL)
    for _ in range(100):
        if not streamer.alive():
            break
        time.sleep(0.05)
    slot = point.slot_name
    world.cluster.execute(  # the slot (and the WAL it kept) is gone: a gap
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        f"WHERE slot_name = '{slot}' AND active"
    )
    for _ in range(100):
        rows = world.cluster.execute(
            f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"
        )
        if rows == [(False,)]:
            break
        time.sleep(0.05)
    world.cluster.execute(f"SELECT pg_drop_replication_slot('{slot}')")
    world.streamers.tick()
    after = world.point()
    assert after.gap_message is not None and "WAL gap" in after.gap_message
    with catalog.db.read_transaction(world.deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, after.recovery_point_arn)
    assert "WAL gap" in (rp.status_message or "")
    assert after.window is not None and point.window is not None
    assert after.window.earliest > point.window.latest  # only after the new base backup
    batch(world.cluster, "after-gap")
    world.streamers.tick(ship=True)
    rows = world.restore_and_query(None, "SELECT count(*) FROM batches WHERE name = 'after-gap'")
    assert rows == [(100,)]


def test_a_partial_completed_while_shipping_and_a_failed_pass_keep_the_window(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load pg_receivewal renames ``X.partial`` to ``X`` between the supervisor's
    listing and its open: the completed segment is shipped instead and the window goes on
    (it once restarted: the failed pass retired the point's slot and spool as if no rule
    selected the cluster). A pass that fails outright keeps the streamer and slot too."""
    c = world.cluster
    world.streamers.tick()
    batch(c, "before-the-race")
    world.streamers.tick(ship=True)
    arn = world.point().recovery_point_arn
    earliest, gap_before = world.point().window, world.point().gap_message
    assert earliest is not None
    real = continuous.Streamers._ship_file
    raced: list[str] = []

    def racing(self: continuous.Streamers, a: Any, rp: str, f: Any) -> None:
        if f.kind == "partial" and not raced:
            raced.append(f.name)
            c.execute("SELECT pg_switch_wal()")  # the segment completes under us
            deadline = time.monotonic() + 10
            while os.path.exists(f.path) and time.monotonic() < deadline:
                time.sleep(0.05)
            raise FileNotFoundError(f.path)
        real(self, a, rp, f)

    batch(c, "raced")
    monkeypatch.setattr(continuous.Streamers, "_ship_file", racing)
    world.streamers.tick(ship=True)
    assert raced
    monkeypatch.setattr(continuous.Streamers, "_ship_file", real)

    def broken(self: continuous.Streamers, *args: Any, **kw: Any) -> None:
        raise RuntimeError("the vault's store is unreachable")

    monkeypatch.setattr(continuous.Streamers, "_ship", broken)
    world.streamers.tick(ship=True)  # fails: the point stays served
    monkeypatch.undo()
    with catalog.db.read_transaction(world.deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, arn)
    assert rp.status != "STOPPED" and "failing" in (rp.status_message or "")
    assert world.streamers.streamer(arn) is not None  # not retired
    world.streamers.tick(ship=True)
    point = world.point()
    assert point.recovery_point_arn == arn and point.gap_message == gap_before  # no new gap
    assert point.window is not None and point.window.earliest == earliest.earliest
    rows = world.restore_and_query(None, "SELECT count(*) FROM batches WHERE name = 'raced'")
    assert rows == [(100,)]
