"""The bypass matrix at the service level (FakeClock; the API adds only the authorize
hook, done here by World.api): destructive path x principal x lock state x legal hold.

Each cell asserts the answer (None = allowed, else the AWS error code), and each world
ends with an expiry sweep, a prune and a check that the vault passes engine check and
that every recovery point still in the catalog restores: no protected byte is removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import World, admin_policy
from snowvault.control.model.legal_holds import Selection
from snowvault.control.services import (
    expiry,
    iam,
    legal_holds,
    recovery_points,
    vault_lock,
    vaults,
)
from snowvault.control.services.base import Caller
from snowvault.core.errors import SnowvaultError
from snowvault.interfaces.api.errors import ERROR_TABLE, to_api_error
from snowvault.testing import FakeClock

LOCKS = ("none", "governance", "grace", "locked")
HOLDS = ("none", "active")
PRINCIPALS = ("root", "owner", "other", "bypass")
TABLE = ERROR_TABLE
DENIED, LOCKED, HELD, MISSING = (
    "AccessDeniedException",
    "InvalidRequestException",
    "InvalidResourceStateException",
    "ResourceNotFoundException",
)
assert ERROR_TABLE  # the base table is what the server extends


def _code(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    try:
        call(*args, **kwargs)
    except SnowvaultError as exc:
        return to_api_error(exc, TABLE).code
    return None


def expected_delete(principal: str, lock: str, hold: str) -> str | None:
    if principal == "other":
        return DENIED
    if hold == "active":
        return HELD
    return None if lock == "none" else LOCKED  # a lock in place stops everyone, root too


def expected_shorten(principal: str, lock: str, hold: str) -> str | None:
    if principal == "other":
        return DENIED
    return None if lock == "none" else LOCKED


def expected_lock_change(principal: str, lock: str) -> str | None:
    if principal == "other":
        return MISSING  # names resolve in the caller's own account
    if principal == "owner":
        return DENIED
    return LOCKED if lock == "locked" else None


def _setup(tmp_path: Path, clock: FakeClock, lock: str) -> tuple[World, dict[str, Caller]]:
    world = World(tmp_path, clock)
    world.vault("main")
    deny_lock = (
        "backup:PutBackupVaultLockConfiguration",
        "backup:DeleteBackupVaultLockConfiguration",
    )
    who = {
        "root": world.root,
        "owner": world.user("owner", admin_policy(*deny_lock)),
        "bypass": world.user("bypass", admin_policy()),
        "other": world.other_account(),
    }
    _lock(world, lock)
    return world, who


def _lock(world: World, lock: str) -> None:
    if lock == "governance":
        vault_lock.put(world.deps, world.root, "main", min_days=1, max_days=100)
    elif lock in ("grace", "locked"):
        vault_lock.put(
            world.deps, world.root, "main", min_days=1, max_days=100, changeable_for_days=3
        )
        if lock == "locked":
            world.clock.advance(timedelta(days=3))


@pytest.mark.parametrize("hold", HOLDS)
@pytest.mark.parametrize("lock", LOCKS)
def test_recovery_point_paths(tmp_path: Path, clock: FakeClock, lock: str, hold: str) -> None:
    world, who = _setup(tmp_path, clock, lock)
    rp = world.backup("main", 10)
    if hold == "active":
        legal_holds.create(
            world.deps, world.root, title="t", description="d", selection=Selection(("main",))
        )
    results: dict[tuple[str, str], str | None] = {}
    for principal in PRINCIPALS:
        caller = who[principal]
        days = int((rp.delete_at - rp.creation_date).days) - 1
        params = {"BackupVaultName": "main", "RecoveryPointArn": rp.arn}
        results["shorten", principal] = _code(
            world.api,
            caller,
            "UpdateRecoveryPointLifecycle",
            params,
            recovery_points.update_lifecycle,
            "main",
            rp.arn,
            {"DeleteAfterDays": days},
        )
        rp = recovery_points.get(world.deps, world.root, "main", rp.arn)
        vault_params = {"BackupVaultName": "main"}
        results["delete_vault", principal] = _code(
            world.api, caller, "DeleteBackupVault", vault_params, vaults.delete, "main"
        )
        results["delete", principal] = _code(
            world.api,
            caller,
            "DeleteRecoveryPoint",
            params,
            recovery_points.delete,
            "main",
            rp.arn,
        )
        if results["delete", principal] is None:
            rp = world.backup("main", 10)  # the next principal gets a fresh point
    for principal in PRINCIPALS:
        assert results["delete", principal] == expected_delete(principal, lock, hold), principal
        assert results["shorten", principal] == expected_shorten(principal, lock, hold), principal
        want_vault = MISSING if principal == "other" else LOCKED  # it holds recovery points
        assert results["delete_vault", principal] == want_vault, principal
    _sweep_and_verify(world, hold)


def _sweep_and_verify(world: World, hold: str) -> None:
    remaining = world.points("main")
    assert remaining
    world.clock.advance(timedelta(days=200))  # everything is past DeleteAt and any floor
    deleted, waiting = expiry.expire_due(world.deps, world.clock.now())
    if hold == "active":
        assert deleted == [] and set(waiting) == remaining  # expiry waits for the hold
    else:
        assert set(deleted) == remaining and waiting == []
    recovery_points.prune_pending(world.deps)
    kept = [
        recovery_points.get(world.deps, world.root, "main", arn) for arn in world.points("main")
    ]
    world.assert_intact("main", kept)


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_management_paths(tmp_path: Path, clock: FakeClock, lock: str) -> None:
    world, who = _setup(tmp_path, clock, lock)
    for principal in PRINCIPALS:
        caller = who[principal]
        params = {"BackupVaultName": "main"}
        got_delete = _code(
            world.api,
            caller,
            "DeleteBackupVaultLockConfiguration",
            params,
            vault_lock.delete,
            "main",
        )
        assert got_delete == expected_lock_change(principal, lock), ("delete", principal)
        _relock(world, lock)
        got_put = _code(
            world.api,
            caller,
            "PutBackupVaultLockConfiguration",
            params,
            vault_lock.put,
            "main",
            min_days=2,
        )
        assert got_put == expected_lock_change(principal, lock), ("put", principal)
        _relock(world, lock)


def _relock(world: World, lock: str) -> None:
    """Put the world's lock state back after an allowed change (locked never changes)."""
    if lock == "locked":
        return
    vault_lock.delete(world.deps, world.root, "main")
    if lock == "governance":
        vault_lock.put(world.deps, world.root, "main", min_days=1, max_days=100)
    elif lock == "grace":
        vault_lock.put(
            world.deps, world.root, "main", min_days=1, max_days=100, changeable_for_days=3
        )


def test_deny_everyone_vault_policy_beats_every_bypass(tmp_path: Path, clock: FakeClock) -> None:
    world, who = _setup(tmp_path, clock, "none")
    rp = world.backup("main", 10)
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "backup:DeleteRecoveryPoint",
                "Resource": "*",
            }
        ],
    }
    iam.put_vault_access_policy(world.deps, world.root, "main", json.dumps(deny))
    params = {"BackupVaultName": "main", "RecoveryPointArn": rp.arn}
    for principal in PRINCIPALS:
        got = _code(
            world.api,
            who[principal],
            "DeleteRecoveryPoint",
            params,
            recovery_points.delete,
            "main",
            rp.arn,
        )
        assert got == DENIED, principal
    world.assert_intact("main", [rp])
