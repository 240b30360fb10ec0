"""The integrity watch reads a rotating share of packs (issue 16): a damaged pack (a
flipped byte, a truncation) is reported within one cycle — StatusMessage, a
RECOVERY_POINT_MODIFIED notification, a metric, a trail event — and data moved to cold
storage is read where it went, not reported. SQLite catalog, local storage, FakeClock."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner, sweepers
from snowvault.control.services import (
    accounts,
    backup_jobs,
    integrity,
    notifications,
    observability,
    recovery_points,
    resources,
    sns,
    vaults,
)
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.engine import crypto
from snowvault.testing import FakeClock, ServerVaultKeys

ROOT = b"i" * 32
REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
DAYS = 3
DAY = timedelta(hours=24, minutes=1)  # a check is due 24 h after the last one


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Deps, Caller, list[dict[str, Any]]]]:
    engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.db.upgrade(engine)
    paths = host_paths.Policy.build([str(tmp_path)], [], [], os.path.realpath)
    storage = Storage({REGION: str(tmp_path / "warm")}, {REGION: str(tmp_path / "cold")})
    records: list[dict[str, Any]] = []
    deps = Deps(
        engine,
        clock,
        storage,
        ServerVaultKeys(ROOT),
        path_policy=paths,
        trail=records.append,
        integrity_days=DAYS,
    )
    box = crypto.SecretBox(ROOT, "access-keys")
    root = accounts.bootstrap(engine, box, now=clock.now(), account_id=ACCOUNT)
    yield deps, Caller(ACCOUNT, REGION, root.principal_arn, clock.now()), records
    engine.dispose()


def _backup(deps: Deps, caller: Caller, src: Path, lifecycle: dict[str, int] | None = None) -> str:
    src.mkdir()
    (src / "f").write_bytes(random.Random(src.name).randbytes(20_000))
    arn = resources.register(
        deps, caller, resource_type="Directory", name=src.name, source=str(src)
    )
    job = backup_jobs.start(
        deps, caller, backup_jobs.StartRequest("v", str(arn["arn"]), ROLE, lifecycle=lifecycle)
    )
    assert runner.Worker(deps, runner.WorkerOptions(threads=0)).run_once() == "COMPLETED"
    return str(backup_jobs.get(deps, caller, job.job_id).recovery_point_arn)


def _packs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "/data/" in str(p))


def _subscribe(deps: Deps, caller: Caller) -> None:
    topic = sns.create_topic(deps, caller, "events")
    sns.subscribe(deps, caller, topic, "http", "http://127.0.0.1:9/hook")
    with catalog.db.read_transaction(deps.engine) as conn:
        (sub,) = catalog.notifications.subscriptions_of(conn, topic)
    sns.confirm(deps, topic, sub.token)
    notifications.put(deps, caller, "v", topic, ["RECOVERY_POINT_MODIFIED"])


def _events(deps: Deps) -> list[str]:
    out = []
    with catalog.db.read_transaction(deps.engine) as conn:
        for seq in range(1, 50):
            row = catalog.notifications.get_outgoing(conn, seq)
            if row is not None and row.message_type == "Notification":
                out.append(str((row.attributes or {})["State"]["Value"]))
    return out


def test_shares_cover_every_pack_within_the_days_and_catch_up_after_a_gap() -> None:
    ids = [f"{random.Random(n).getrandbits(256):064x}" for n in range(60)]
    start = date(2026, 3, 1)
    read = [
        {i for i in ids if integrity.todays_share(i, start + timedelta(d), 30)} for d in range(30)
    ]
    assert set().union(*read) == set(ids) and sum(map(len, read)) == len(ids)
    clock = FakeClock()
    now = clock.now()
    assert len(integrity.shares_due(None, now, 30)) == 1
    assert len(integrity.shares_due(now - timedelta(days=3), now, 30)) == 3  # 2 missed + today
    assert len(integrity.shares_due(now - timedelta(days=90), now, 30)) == 30


def test_a_flipped_byte_is_reported_at_the_check_whose_share_holds_the_pack(
    world: tuple[Deps, Caller, list[dict[str, Any]]], clock: FakeClock, tmp_path: Path
) -> None:
    deps, caller, records = world
    vaults.create(deps, caller, "v")
    _subscribe(deps, caller)
    point = _backup(deps, caller, tmp_path / "src")
    assert integrity.reconcile(deps, clock.now()) == []  # whole
    (pack,) = [p for p in _packs(tmp_path / "warm") if p.stat().st_size > 10_000]
    data = bytearray(pack.read_bytes())
    data[100] ^= 0x01  # inside the first blob, far from the header
    pack.write_bytes(bytes(data))

    flagged_on = None
    for day in range(1, DAYS + 1):
        clock.advance(DAY)
        found = integrity.reconcile(deps, clock.now())
        due = integrity.todays_share(pack.name, clock.now().date(), DAYS)
        assert found == ([point] if due else []), (day, due)
        if found:
            flagged_on = day
            break
    assert flagged_on is not None  # within one cycle of DAYS checks

    later = replace(caller, now=clock.now())
    message = recovery_points.get(deps, later, "v", point).status_message or ""
    assert message.startswith(integrity.DAMAGED) and pack.name in message
    assert _events(deps) == ["DAMAGED"]
    snap = observability.snapshot(deps, clock.now())
    assert [(v, n) for _, _, v, n in snap.damaged_points] == [("v", 1)]
    (event,) = [r for r in records if r["eventName"] == "RecoveryPointIntegrityFailed"]
    assert event["serviceEventDetails"]["recoveryPointArn"] == point
    assert event["serviceEventDetails"]["state"] == "DAMAGED"

    clock.advance(DAY * DAYS)
    for _ in range(DAYS):  # reported once, the flag stays
        clock.advance(DAY)
        assert integrity.reconcile(deps, clock.now()) == []
    assert _events(deps) == ["DAMAGED"]


def test_a_truncated_pack_is_reported_at_the_next_check(
    world: tuple[Deps, Caller, list[dict[str, Any]]], clock: FakeClock, tmp_path: Path
) -> None:
    deps, caller, _ = world
    vaults.create(deps, caller, "v")
    point = _backup(deps, caller, tmp_path / "src")
    integrity.reconcile(deps, clock.now())
    (pack,) = [p for p in _packs(tmp_path / "warm") if p.stat().st_size > 10_000]
    pack.write_bytes(pack.read_bytes()[:-50])  # the header's tail is gone
    clock.advance(DAY)
    assert integrity.reconcile(deps, clock.now()) == [point]


def test_data_moved_to_cold_storage_is_read_there_and_not_flagged(
    world: tuple[Deps, Caller, list[dict[str, Any]]], clock: FakeClock, tmp_path: Path
) -> None:
    deps, caller, records = world
    vaults.create(deps, caller, "v")
    point = _backup(deps, caller, tmp_path / "src", {"MoveToColdStorageAfterDays": 1})
    clock.advance(timedelta(days=2))
    report = sweepers.run(deps, clock.now())  # cold, cold-data, ..., integrity
    assert report.get("cold") == [point] and report.get("cold-data")
    assert _packs(tmp_path / "cold") and not [
        p for p in _packs(tmp_path / "warm") if p.stat().st_size > 10_000
    ]
    for _ in range(DAYS + 1):  # every share read once at least
        clock.advance(DAY)
        assert integrity.reconcile(deps, clock.now()) == []
    later = replace(caller, now=clock.now())
    assert recovery_points.get(deps, later, "v", point).status_message is None
    assert "RecoveryPointIntegrityFailed" not in [r["eventName"] for r in records]
    assert "RecoveryPointTransitionedToCold" in [r["eventName"] for r in records]
