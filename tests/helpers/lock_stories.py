"""Vault-lock stories run over more than one store (the unit tests' LockingMemoryBackend
and a real S3 Object Lock bucket): each takes a :class:`helpers.access_world.World`."""

from __future__ import annotations

import pytest

from helpers.access_world import World, admin_policy
from snowvault.control.services import recovery_points, vault_lock, vaults
from snowvault.core.errors import PermissionDenied
from snowvault.engine import prune


def bypass_delete_story(world: World) -> None:
    """Governance lock: nobody, root included, deletes a point the lock protects; a user
    without the permission cannot remove the lock; root removes it and then deletes — the
    store's GOVERNANCE retention is bypassed for the manifest and the packs only that point
    needed; the other point stays intact and retained."""
    world.vault("g")
    vault_lock.put(world.deps, world.root, "g", min_days=5)
    kept = world.backup("g", 30)
    doomed = world.backup("g", 30)
    vault = vaults.get(world.deps, world.root, "g")
    with vaults.open_repository(world.deps, vault) as repo:
        exclusive = prune.packs_of(repo, repo.load_manifest(doomed.engine_recovery_point_id))
        exclusive -= prune.packs_of(repo, repo.load_manifest(kept.engine_recovery_point_id))
        assert exclusive and all(repo.backend.get_retention(p) for p in exclusive)

    owner = world.user("owner", admin_policy("backup:DeleteBackupVaultLockConfiguration"))
    for who in (owner, world.root):
        with pytest.raises(vault_lock.VaultLocked):
            world.api(who, "DeleteRecoveryPoint", {}, recovery_points.delete, "g", doomed.arn)
    with pytest.raises(PermissionDenied):
        world.api(owner, "DeleteBackupVaultLockConfiguration", {}, vault_lock.delete, "g")
    world.api(world.root, "DeleteBackupVaultLockConfiguration", {}, vault_lock.delete, "g")
    world.api(world.root, "DeleteRecoveryPoint", {}, recovery_points.delete, "g", doomed.arn)
    assert recovery_points.prune_pending(world.deps) == [vault["arn"]]

    with vaults.open_repository(world.deps, vault) as repo:
        assert doomed.engine_recovery_point_id not in repo.list_manifests()
        assert not [p for p in exclusive if repo.backend.exists(p)]
    world.assert_intact("g", [kept])
