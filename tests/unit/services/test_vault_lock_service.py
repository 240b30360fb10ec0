"""Vault Lock through the services: put/delete rules, Describe fields, enforcement on
delete, lifecycle and job retention, and the lock date to the second (FakeClock)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpers.access_world import World
from snowvault.control.services import recovery_points, vault_lock, vaults
from snowvault.core.errors import Conflict, InvalidInput
from snowvault.testing import FakeClock


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> World:
    w = World(tmp_path, clock)
    w.vault("main")
    return w


def _put(world: World, **kw: int | None) -> dict[str, object]:
    return vault_lock.put(world.deps, world.root, "main", **kw)


def test_describe_shows_the_lock(world: World) -> None:
    assert vault_lock.describe_fields(world.deps, vaults.get(world.deps, world.root, "main")) == {
        "Locked": False
    }
    _put(world, min_days=7, max_days=30, changeable_for_days=3)
    row = vaults.get(world.deps, world.root, "main")
    assert row["locked"] is True
    fields = vault_lock.describe_fields(world.deps, row)
    assert fields["MinRetentionDays"] == 7 and fields["MaxRetentionDays"] == 30
    assert fields["LockDate"] == world.clock.now() + timedelta(days=3)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"min_days": 0}, "MinRetentionDays"),
        ({"max_days": 36501}, "MaxRetentionDays"),
        ({"min_days": 10, "max_days": 5}, "must not exceed"),
        ({"changeable_for_days": 2}, "ChangeableForDays"),
    ],
)
def test_put_validates_like_aws(world: World, kw: dict[str, int], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _put(world, **kw)


def test_compliance_lock_date_to_the_second(world: World) -> None:
    _put(world, min_days=1, changeable_for_days=3)
    world.clock.advance(timedelta(days=3) - timedelta(seconds=1))
    _put(world, min_days=2, changeable_for_days=3)  # grace: may still change (LockDate moves)
    world.clock.advance(timedelta(days=3) - timedelta(seconds=1))
    vault_lock.delete(world.deps, world.root, "main")  # one second before: removable
    _put(world, min_days=1, changeable_for_days=3)
    world.clock.advance(timedelta(days=3))  # exactly LockDate: immutable, root included
    with pytest.raises(vault_lock.VaultLocked, match="immutable"):
        vault_lock.delete(world.deps, world.root, "main")
    with pytest.raises(vault_lock.VaultLocked, match="immutable"):
        _put(world, min_days=5)


def test_governance_lock_is_removable_any_time(world: World) -> None:
    _put(world, min_days=1)
    world.clock.advance(timedelta(days=400))
    vault_lock.delete(world.deps, world.root, "main")
    row = vaults.get(world.deps, world.root, "main")
    assert row["locked"] is False and row["min_retention_days"] is None


def test_job_retention_outside_min_max_fails_with_a_reason(world: World) -> None:
    _put(world, min_days=7, max_days=30)
    assert "shorter than the vault's MinRetentionDays (7)" in world.failed_backup_message("main", 3)
    assert "MaxRetentionDays (30)" in world.failed_backup_message("main", None)
    rp = world.backup("main", 10)
    assert rp.delete_at == rp.creation_date + timedelta(days=10)


def test_delete_and_shorten_refused_under_immutable_lock_even_for_root(world: World) -> None:
    rp = world.backup("main", 10)
    _put(world, min_days=1, changeable_for_days=3)
    world.clock.advance(timedelta(days=3))
    with pytest.raises(vault_lock.VaultLocked):
        recovery_points.delete(world.deps, world.root, "main", rp.arn)
    with pytest.raises(vault_lock.VaultLocked, match="shortened"):
        recovery_points.update_lifecycle(
            world.deps, world.root, "main", rp.arn, {"DeleteAfterDays": 5}
        )
    longer = recovery_points.update_lifecycle(
        world.deps, world.root, "main", rp.arn, {"DeleteAfterDays": 20}
    )
    assert longer.delete_at == rp.creation_date + timedelta(days=20)
    world.assert_intact("main", [rp])
    world.clock.advance(timedelta(days=17, seconds=1))  # past the new DeleteAt
    recovery_points.delete(world.deps, world.root, "main", rp.arn)
    assert world.points("main") == set()


def test_vault_with_points_cannot_be_deleted(world: World) -> None:
    world.backup("main", 10)
    with pytest.raises(Conflict, match="cannot be deleted because it contains recovery points"):
        vaults.delete(world.deps, world.root, "main")


def test_expiry_waits_for_min_retention_of_points_made_under_the_lock(world: World) -> None:
    from snowvault.control.services import expiry

    _put(world, min_days=1)
    rp = world.backup("main", 1)
    world.clock.advance(timedelta(days=1) - timedelta(seconds=1))
    assert expiry.expire_due(world.deps, world.clock.now()) == ([], [])
    world.clock.advance(timedelta(seconds=1))
    deleted, waiting = expiry.expire_due(world.deps, world.clock.now())
    assert deleted == [rp.arn] and waiting == []
    assert recovery_points.prune_pending(world.deps) != []
    world.assert_intact("main", [])
