"""Cold storage over real vaults (SQLite catalog, local warm and cold locations,
FakeClock): MoveToColdStorageAfterDays moves the packs only cold points need to the
region's cold location, a restore reads them from there, the vault stays whole, and a
pack a warm point shares stays warm."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner, sweepers
from snowvault.control.services import (
    accounts,
    backup_jobs,
    cold_storage,
    recovery_points,
    resources,
    restore_jobs,
    vaults,
)
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.engine import check, crypto
from snowvault.testing import FakeClock, ServerVaultKeys

ROOT = b"e" * 32
REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
COLD_SOON = {"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 120}


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.db.upgrade(engine)
    paths = host_paths.Policy.build([str(tmp_path)], [], [], os.path.realpath)
    storage = Storage({REGION: str(tmp_path / "warm")}, {REGION: str(tmp_path / "cold")})
    yield Deps(engine, clock, storage, ServerVaultKeys(ROOT), path_policy=paths)
    engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    box = crypto.SecretBox(ROOT, "access-keys")
    root = accounts.bootstrap(deps.engine, box, now=deps.clock.now(), account_id=ACCOUNT)
    return Caller(ACCOUNT, REGION, root.principal_arn, deps.clock.now())


def _resource(deps: Deps, caller: Caller, root: Path, seed: int) -> str:
    root.mkdir()
    rng = random.Random(seed)
    for i in range(4):
        (root / f"f{i}").write_bytes(rng.randbytes(30_000))
    row = resources.register(
        deps, caller, resource_type="Directory", name=root.name, source=str(root)
    )
    return str(row["arn"])


def _backup(deps: Deps, caller: Caller, arn: str, lifecycle: dict[str, int] | None) -> str:
    job = backup_jobs.start(
        deps, caller, backup_jobs.StartRequest("v", arn, ROLE, lifecycle=lifecycle)
    )
    assert runner.Worker(deps, runner.WorkerOptions(threads=0)).run_once() == "COMPLETED"
    return backup_jobs.get(deps, caller, job.job_id).recovery_point_arn


def _packs(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and "/data/" in str(p)}


def test_cold_points_data_moves_and_restores_from_the_cold_location(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    vault = vaults.create(deps, caller, "v")
    cold_rp = _backup(deps, caller, _resource(deps, caller, tmp_path / "old", 1), COLD_SOON)
    warm_rp = _backup(deps, caller, _resource(deps, caller, tmp_path / "new", 2), None)
    assert _packs(tmp_path / "cold") == set()
    before = _packs(tmp_path / "warm")

    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(days=2))
    report = sweepers.run(deps, deps.clock.now())
    assert report.get("cold") == [cold_rp]
    assert report.get("cold-data") == [vault["arn"]]
    moved = _packs(tmp_path / "cold")
    assert moved and moved <= before and _packs(tmp_path / "warm") == before - moved
    assert sweepers.run(deps, deps.clock.now()).get("cold-data") == []  # nothing new

    later = replace(caller, now=deps.clock.now())
    assert recovery_points.get(deps, later, "v", cold_rp).storage_class == "COLD"
    assert recovery_points.get(deps, later, "v", warm_rp).storage_class == "WARM"
    restore_jobs.start(
        deps, later, recovery_point_arn=cold_rp, metadata={"targetPath": str(tmp_path / "out")}
    )
    assert runner.Worker(deps, runner.WorkerOptions(threads=0)).run_once() == "COMPLETED"
    for path in (tmp_path / "old").iterdir():
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()
    with vaults.open_repository(deps, vault) as repo:
        assert check.check(repo, read_data=True).ok


def test_a_pack_a_warm_point_shares_stays_warm(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    vault = vaults.create(deps, caller, "v")
    arn = _resource(deps, caller, tmp_path / "same", 3)
    _backup(deps, caller, arn, COLD_SOON)
    _backup(deps, caller, arn, None)  # unchanged: it references the same packs
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(days=2))
    sweepers.run(deps, deps.clock.now())
    assert _packs(tmp_path / "cold") == set()
    moved = cold_storage.move_vault(deps, vault["arn"], deps.clock.now())
    assert moved is not None and moved.packs == [] and moved.shared >= 1


def test_a_vault_is_looked_at_again_a_day_after_its_last_move(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    vault = vaults.create(deps, caller, "v")
    _backup(deps, caller, _resource(deps, caller, tmp_path / "old", 4), COLD_SOON)
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(days=2))
    assert sweepers.run(deps, deps.clock.now()).get("cold-data") == [vault["arn"]]
    deps.clock.advance(timedelta(hours=1))
    with catalog.db.read_transaction(deps.engine) as conn:
        later = deps.clock.now() - cold_storage.RECHECK
        assert catalog.cold_storage.vaults_to_move(conn, recheck_before=later) == []
        deps.clock.advance(cold_storage.RECHECK)
        again = deps.clock.now() - cold_storage.RECHECK
        assert catalog.cold_storage.vaults_to_move(conn, recheck_before=again) == [vault["arn"]]
