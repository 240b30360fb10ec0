"""The store retention sweeper and the governance bypass on a store that enforces
retention (LockingMemoryBackend on the FakeClock): a point whose retention a crash left
unset gets it, GOVERNANCE turns COMPLIANCE at LockDate to the second, points kept forever
have their rolling retention renewed before it runs out, a sweep with nothing changed
touches no store, and a delete allowed through the governance bypass also gets past the
store's GOVERNANCE retention (forget and prune)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpers.access_world import World
from helpers.lock_stories import bypass_delete_story
from snowvault.control.model import jobs
from snowvault.control.scheduler.runner import Worker
from snowvault.control.services import vault_lock, vaults
from snowvault.engine import errors, prune
from snowvault.engine.backends.base import Retention
from snowvault.engine.repository import MANIFEST_PREFIX
from snowvault.testing import FakeClock, FaultyBackend, LockingMemoryBackend


@pytest.fixture
def store(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FaultyBackend:
    """Every vault opens this one retention-enforcing store (through a fault injector)."""
    faulty = FaultyBackend(LockingMemoryBackend(clock))
    monkeypatch.setattr(vaults, "open_backend", lambda url: faulty)
    return faulty


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock, store: FaultyBackend) -> World:
    return World(tmp_path, clock)


def retention_of(
    world: World, vault_name: str, rp: jobs.RecoveryPoint
) -> dict[str, Retention | None]:
    """The store retention of every object ``rp`` needs (packs, manifest, config)."""
    vault = vaults.get(world.deps, world.root, vault_name)
    with vaults.open_repository(world.deps, vault) as repo:
        rp_id = rp.engine_recovery_point_id
        names = prune.packs_of(repo, repo.load_manifest(rp_id))
        names |= {MANIFEST_PREFIX + rp_id, "config"}
        return {name: repo.backend.get_retention(name) for name in sorted(names)}


def test_sweep_sets_the_retention_a_crash_left_unset_then_costs_nothing(
    world: World, store: FaultyBackend
) -> None:
    world.vault("v")
    vault_lock.put(world.deps, world.root, "v", min_days=1)
    store.fail("set_retention", nth=1, times=10_000)  # protect fails after the point is recorded
    rp = world.backup("v", 10)
    store.rules.clear()
    assert set(retention_of(world, "v", rp).values()) == {None}

    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == [rp.backup_vault_arn]
    after = retention_of(world, "v", rp)
    assert all(r is not None and r.mode == "GOVERNANCE" for r in after.values())
    assert all(r is not None and r.until >= rp.delete_at for r in after.values())

    calls = dict(store.calls)
    world.advance(hours=1)
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == []
    assert dict(store.calls) == calls  # nothing changed: not one store call


def test_compliance_retention_starts_at_lock_date_to_the_second(
    world: World, store: FaultyBackend
) -> None:
    world.vault("v")
    lock = vault_lock.put(world.deps, world.root, "v", min_days=1, changeable_for_days=3)
    rp = world.backup("v", 10)  # written in grace time: GOVERNANCE
    worker = Worker(world.deps)
    worker.sweep_once()
    assert {r.mode for r in retention_of(world, "v", rp).values() if r} == {"GOVERNANCE"}

    world.clock.set(lock["lock_date"] - timedelta(seconds=1))
    worker.sweep_once()
    assert {r.mode for r in retention_of(world, "v", rp).values() if r} == {"GOVERNANCE"}

    world.clock.set(lock["lock_date"])
    worker.sweep_once()
    retained = retention_of(world, "v", rp)
    assert {r.mode for r in retained.values() if r} == {"COMPLIANCE"}
    pack = next(name for name in retained if name.startswith("data/"))
    with pytest.raises(errors.ObjectLocked):
        store.inner.delete(pack, bypass_governance=True)


def test_points_kept_forever_are_renewed_before_their_retention_runs_out(
    world: World,
) -> None:
    world.vault("v")
    vault_lock.put(world.deps, world.root, "v", min_days=1)
    rp = world.backup("v", None)
    start = world.clock.now()
    horizon = vault_lock.OPEN_ENDED_HORIZON
    first = retention_of(world, "v", rp)
    assert all(
        r is not None and r.until >= start + horizon - timedelta(minutes=5) for r in first.values()
    )
    vault_lock.sweep_store_retention(world.deps, world.clock.now())  # the sweeper's first record

    world.clock.set(start + horizon - vault_lock.RENEW_BEFORE - timedelta(days=1))
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == []
    world.clock.set(start + horizon - vault_lock.RENEW_BEFORE + timedelta(days=1))
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == [rp.backup_vault_arn]
    renewed = retention_of(world, "v", rp)
    assert all(r is not None and r.until >= world.clock.now() + horizon for r in renewed.values())


def test_governance_bypass_delete_gets_past_store_retention(world: World) -> None:
    bypass_delete_story(world)
