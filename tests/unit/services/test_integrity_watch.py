"""The integrity watch and job events on the unit tier: a SQLite catalog, local storage,
a FakeClock, the real worker (issue 16)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from snowvault.control import catalog
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    copy_jobs,
    integrity,
    notifications,
    observability,
    recovery_points,
    resources,
    restore_jobs,
    sns,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"


def _messages(deps: Deps) -> list[tuple[str, str]]:
    """(message type, BackupVaultEvent or '') of every outbox row, in order."""
    out = []
    with catalog.db.read_transaction(deps.engine) as conn:
        for seq in range(1, 50):
            row = catalog.notifications.get_outgoing(conn, seq)
            if row is not None:
                event = (row.attributes or {}).get("BackupVaultEvent", {}).get("Value", "")
                out.append((row.message_type, str(event)))
    return out


def test_a_deleted_manifest_is_reported_once_and_cleared_when_back(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(random.Random(3).randbytes(3000))
    vaults.create(deps, caller, "v")
    arn = resources.register(deps, caller, resource_type="Directory", name="s", source=str(src))
    topic = sns.create_topic(deps, caller, "events")
    sns.subscribe(deps, caller, topic, "http", "http://127.0.0.1:9/hook")
    with catalog.db.read_transaction(deps.engine) as conn:
        (sub,) = catalog.notifications.subscriptions_of(conn, topic)
    sns.confirm(deps, topic, sub.token)
    events = ["BACKUP_JOB_STARTED", "BACKUP_JOB_COMPLETED", "RECOVERY_POINT_MODIFIED"]
    notifications.put(deps, caller, "v", topic, events)

    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", str(arn["arn"]), ROLE))
    worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
    assert worker.run_once() == "COMPLETED"
    assert _messages(deps)[1:] == [
        ("Notification", "BACKUP_JOB_STARTED"),
        ("Notification", "BACKUP_JOB_COMPLETED"),
    ]

    assert integrity.reconcile(deps, clock.now()) == []  # all there
    no_filter = catalog.recovery_points.RecoveryPointFilters()
    (point,) = recovery_points.list_by_vault(deps, caller, "v", no_filter).items
    manifest = next(
        p for p in (tmp_path / "storage").rglob("*") if p.name == point.engine_recovery_point_id
    )
    kept = manifest.read_bytes()
    manifest.unlink()
    assert integrity.reconcile(deps, clock.now()) == []  # checked less than a day ago

    clock.advance(timedelta(hours=25))
    assert integrity.reconcile(deps, clock.now()) == [point.arn]
    described = recovery_points.get(deps, caller, "v", point.arn)
    assert (described.status_message or "").startswith(integrity.MISSING)
    assert _messages(deps)[-1] == ("Notification", "RECOVERY_POINT_MODIFIED")
    snap = observability.snapshot(deps, clock.now())
    assert [(v, n) for _, _, v, n in snap.missing_manifests] == [("v", 1)]

    clock.advance(timedelta(hours=25))
    assert integrity.reconcile(deps, clock.now()) == []  # reported once
    assert len(_messages(deps)) == 4

    manifest.write_bytes(kept)
    clock.advance(timedelta(hours=25))
    integrity.reconcile(deps, clock.now())
    assert recovery_points.get(deps, caller, "v", point.arn).status_message is None
    snap = observability.snapshot(deps, clock.now())
    assert [(v, n) for _, _, v, n in snap.missing_manifests] == [("v", 0)]


def test_restore_and_copy_jobs_raise_their_events_through_the_same_hook(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data" * 100)
    vaults.create(deps, caller, "v")
    copy_to = vaults.create(deps, caller, "copy-to")
    arn = resources.register(deps, caller, resource_type="Directory", name="s", source=str(src))
    topic = sns.create_topic(deps, caller, "events")
    sns.subscribe(deps, caller, topic, "http", "http://127.0.0.1:9/hook")
    with catalog.db.read_transaction(deps.engine) as conn:
        (sub,) = catalog.notifications.subscriptions_of(conn, topic)
    sns.confirm(deps, topic, sub.token)
    worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", str(arn["arn"]), ROLE))
    assert worker.run_once() == "COMPLETED"  # before the configuration: no event
    events = ["RESTORE_JOB_STARTED", "RESTORE_JOB_COMPLETED", "COPY_JOB_SUCCESSFUL"]
    notifications.put(deps, caller, "v", topic, events)
    assert notifications.get(deps, caller, "v")["BackupVaultEvents"] == events

    no_filter = catalog.recovery_points.RecoveryPointFilters()
    (point,) = recovery_points.list_by_vault(deps, caller, "v", no_filter).items
    restore_jobs.start(
        deps, caller, recovery_point_arn=point.arn, metadata={"targetPath": str(tmp_path / "out")}
    )
    assert worker.run_once() == "COMPLETED"
    copy_jobs.start(deps, caller, copy_jobs.StartRequest(point.arn, "v", str(copy_to["arn"]), ROLE))
    assert worker.run_once() == "COMPLETED"
    assert _messages(deps)[1:] == [
        ("Notification", "RESTORE_JOB_STARTED"),
        ("Notification", "RESTORE_JOB_COMPLETED"),
        ("Notification", "COPY_JOB_SUCCESSFUL"),
    ]
