"""Store-side enforcement on S3 Object Lock (a moto server on loopback): a locked
vault's packs, manifests and config carry a retention reaching the points' DeleteAt,
reused packs are extended, direct deletes through the S3 API are refused, a bucket
without Object Lock is named plainly when a lock is put, the sweeper turns grace-time
GOVERNANCE retention into COMPLIANCE at LockDate, and a governance-bypass delete gets past
the store's GOVERNANCE retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from helpers.access_world import World
from helpers.lock_stories import bypass_delete_story
from snowvault.control.services import vault_lock, vaults
from snowvault.engine import prune
from snowvault.testing import FakeClock


def _bucket(endpoint: str, lock: bool) -> tuple[Any, str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    name = f"sv-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return client, name


@pytest.fixture
def s3_world(
    tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[World, Any, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    client, bucket = _bucket(s3_server, lock=True)
    # moto judges retention by the wall clock: keep the test's time in its future
    world = World(tmp_path, FakeClock(datetime(2099, 1, 1, tzinfo=UTC)))
    world.deps.storage.regions["us-east-1"] = f"s3://{bucket}/vaults"
    return world, client, bucket


def test_lock_on_a_bucket_without_object_lock_is_refused_plainly(
    tmp_path: Path, clock: FakeClock, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    _client, bucket = _bucket(s3_server, lock=False)
    world = World(tmp_path, clock)
    world.deps.storage.regions["us-east-1"] = f"s3://{bucket}/vaults"
    world.vault("plain")
    with pytest.raises(vault_lock.ObjectLockMissing, match="does not have S3 Object Lock"):
        vault_lock.put(world.deps, world.root, "plain", min_days=1)
    assert vaults.get(world.deps, world.root, "plain")["locked"] is False


def test_locked_vault_objects_are_retained_and_extended(s3_world: tuple[World, Any, str]) -> None:
    world, client, bucket = s3_world
    world.vault("worm")
    vault_lock.put(world.deps, world.root, "worm", min_days=1, max_days=100, changeable_for_days=3)
    first = world.backup("worm", 10)
    vault = vaults.get(world.deps, world.root, "worm")
    with vaults.open_repository(world.deps, vault) as repo:
        packs_first = prune.packs_of(repo, repo.load_manifest(first.engine_recovery_point_id))
        assert packs_first
        for name in packs_first:
            retention = repo.backend.get_retention(name)
            assert retention is not None and retention.mode == "GOVERNANCE"  # grace time
            assert retention.until >= first.delete_at
    world.clock.advance(timedelta(days=3))  # the lock becomes immutable
    second = world.backup("worm", 30)  # reuses the shared packs
    with vaults.open_repository(world.deps, vault) as repo:
        packs_second = prune.packs_of(repo, repo.load_manifest(second.engine_recovery_point_id))
        shared = packs_first & packs_second
        assert shared
        for name in shared:
            retention = repo.backend.get_retention(name)
            assert retention is not None and retention.mode == "COMPLIANCE"
            assert retention.until >= second.delete_at
        prefix = str(vault["storage_url"]).split(f"{bucket}/", 1)[1].rstrip("/")
        keys = [f"{prefix}/{name}" for name in sorted(shared)]
    for key in keys:  # direct deletion through the S3 API, version by version
        versions = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
        for version in versions:
            with pytest.raises(ClientError) as info:
                client.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
            assert info.value.response["Error"]["Code"] == "AccessDenied"
    world.assert_intact("worm", [first, second])


def test_sweeper_turns_grace_time_objects_compliance_on_s3(
    s3_world: tuple[World, Any, str],
) -> None:
    world, client, bucket = s3_world
    world.vault("grace")
    lock = vault_lock.put(world.deps, world.root, "grace", min_days=1, changeable_for_days=3)
    rp = world.backup("grace", 10)  # written during grace time: GOVERNANCE
    vault = vaults.get(world.deps, world.root, "grace")
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == [vault["arn"]]
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == []
    world.clock.set(lock["lock_date"])  # the lock becomes immutable: the next sweep acts
    assert vault_lock.sweep_store_retention(world.deps, world.clock.now()) == [vault["arn"]]
    with vaults.open_repository(world.deps, vault) as repo:
        names = sorted(prune.packs_of(repo, repo.load_manifest(rp.engine_recovery_point_id)))
        for name in names:
            retention = repo.backend.get_retention(name)
            assert retention is not None and retention.mode == "COMPLIANCE"
            assert retention.until >= rp.delete_at
    prefix = str(vault["storage_url"]).split(f"{bucket}/", 1)[1].rstrip("/")
    key = f"{prefix}/{names[0]}"
    version = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]
    with pytest.raises(ClientError) as info:  # COMPLIANCE: even the governance bypass fails
        client.delete_object(
            Bucket=bucket, Key=key, VersionId=version["VersionId"], BypassGovernanceRetention=True
        )
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_governance_bypass_delete_on_s3(s3_world: tuple[World, Any, str]) -> None:
    world, _client, _bucket = s3_world
    bypass_delete_story(world)
