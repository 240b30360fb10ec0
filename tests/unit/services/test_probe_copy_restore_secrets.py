"""A restore of a copy in another account never gets the source resource's secrets
(helper Q's probe).

Account A registers a resource with a password (a database, an S3 key) and copies a
point of it into account B's vault. B's restore of its copy ran in the server's worker
with A's resource secrets unsealed: the PostgreSQL and MySQL plugins use them when the
target is the resource's own server and user, and the S3 plugin's restore writes with
the resource's key, so B could write into A's database server or bucket with A's
credentials. On AWS a restore acts with the restoring account's role, never the source
account's. Only a point of the caller's own resource gets its secrets; the restore
defaults of B's copy (GetRecoveryPointRestoreMetadata) named A's source too.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

from helpers.access_world import ACCOUNT, ROLE, World
from snowvault.control import catalog
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    copy_jobs,
    iam,
    recovery_points,
    resources,
    restore_jobs,
    root_key,
    vaults,
)
from snowvault.plugins.base import Resource, RestoreRequest
from snowvault.plugins.registry import Registry
from snowvault.testing import FakeClock
from snowvault.testing.plugins import InMemoryPlugin

SECRET = "hunter2-probe-secret"


class Recording(InMemoryPlugin):
    """InMemoryPlugin that records the resource each restore was handed."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__(objects)
        self.restored_with: list[Resource | None] = []

    def restore(self, request: RestoreRequest) -> None:
        self.restored_with.append(request.resource)
        super().restore(request)


def _run(world: World) -> None:
    runner.Worker(world.deps, runner.WorkerOptions(threads=0, worker_id="w1")).run_once()


def test_a_copy_in_another_account_restores_without_the_sources_secrets(tmp_path: Path) -> None:
    world = World(tmp_path, FakeClock(datetime(2026, 12, 7, tzinfo=UTC)))
    plugin = Recording({"src": b"payload"})
    box = root_key.resource_secret_box(b"k" * 32)
    world.deps = dataclasses.replace(world.deps, plugins=Registry([plugin]), resource_secrets=box)
    a, b = world.root, world.other_account()
    arn = resources.register(world.deps, a, resource_type="InMemory", name="db",
                             source="src", properties={"password": SECRET})["arn"]  # fmt: skip
    vaults.create(world.deps, a, "va")
    job = backup_jobs.start(world.deps, a, backup_jobs.StartRequest("va", arn, ROLE))
    _run(world)
    point = backup_jobs.get(world.deps, a, job.job_id).recovery_point_arn
    b_vault = vaults.create(world.deps, b, "vb")
    allow = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "backup:CopyIntoBackupVault", "Resource": "*"}  # fmt: skip
    policy = json.dumps({"Version": "2012-10-17", "Statement": [allow]})
    iam.put_vault_access_policy(world.deps, b, "vb", policy)
    copy_jobs.start(world.deps, a, copy_jobs.StartRequest(point, "va", str(b_vault["arn"]), ROLE))
    _run(world)
    with catalog.db.read_transaction(world.deps.engine) as conn:
        [copied] = catalog.recovery_points.list_by_vault(conn, vault_arn=str(b_vault["arn"])).items

    # the defaults a restore is offered name the source resource only to its own account
    defaults = recovery_points.restore_metadata(world.deps, a, "va", point)
    assert defaults["targetName"] == "src"
    assert recovery_points.restore_metadata(world.deps, b, "vb", copied.arn)["targetName"] == ""

    # A restores its own point: its resource's secrets arrive (the control)
    restore_jobs.start(world.deps, a, recovery_point_arn=point,
                       metadata={"targetName": "a-out"}, iam_role_arn=ROLE)  # fmt: skip
    _run(world)
    assert plugin.objects.get("a-out") == b"payload"
    assert plugin.restored_with[-1] is not None
    assert plugin.restored_with[-1].secrets == {"password": SECRET}

    # B restores its copy: the data, never A's secrets
    restore_jobs.start(world.deps, b, recovery_point_arn=copied.arn,
                       metadata={"targetName": "b-out"}, iam_role_arn=ROLE)  # fmt: skip
    _run(world)
    assert plugin.objects.get("b-out") == b"payload"
    got = plugin.restored_with[-1]
    assert got is None or not got.secrets, "B's restore was handed A's resource secrets"
