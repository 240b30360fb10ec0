"""No orphans (issue 8): DeleteBackupVault while a job uses the vault is refused, a
failed backup's packs and temporary files are collected after the grace period (and a
running backup's are not), a failed CreateBackupVault leaves nothing behind.

Everything runs through the services with a real SQLite catalog and local storage;
jobs are run by the real worker functions with a JobControl of the test's own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from snowvault.control import catalog
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, resources, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import JobStopped
from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from snowvault.engine import check, prune
from snowvault.engine.backends import local
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock, ServerVaultKeys

ROLE = "arn:aws:iam::111122223333:role/r"
MiB = 1024 * 1024
BIG = 40 * MiB  # more than two 16 MiB packs: an interrupted backup leaves whole packs


def _source(root: Path, size: int, seed: int) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "blob").write_bytes(os.urandom(size) if seed < 0 else bytes([seed]) * size)
    return str(root)


def _register(deps: Deps, caller: Caller, name: str, source: str) -> str:
    row = resources.register(deps, caller, resource_type="Directory", name=name, source=source)
    return str(row["arn"])


class Control:
    """A JobControl: ``on_report(bytes_done)`` runs on each progress report. With a
    clock, each report moves it on a little, so the next chunk reports too (the meter
    reports at most every 0.2 s of its clock)."""

    def __init__(
        self, on_report: Callable[[int], None] = lambda _n: None, clock: FakeClock | None = None
    ) -> None:
        self.on_report = on_report
        self.clock = clock

    def report(self, **progress: Any) -> None:
        if self.clock is not None:
            self.clock.advance(0.25)
        self.on_report(int(progress.get("bytes_transferred") or 0))


def _claim_and_run(deps: Deps, control: Control, lease: float = 30.0) -> tuple[str, str]:
    job = backup_jobs.JOB_KIND.claim(deps, "w-test", [], lease)
    assert job is not None
    return str(job.job_id), backup_jobs.JOB_KIND.execute(deps, job, "w-test", control)


def _storage_dirs(deps: Deps, caller: Caller) -> list[str]:
    account_dir = Path(deps.storage.location(caller.region)) / caller.account_id
    return sorted(p.name for p in account_dir.iterdir()) if account_dir.exists() else []


def _vault_root(deps: Deps, caller: Caller, name: str) -> Path:
    return Path(vaults.get(deps, caller, name)["storage_url"])


# --- DeleteBackupVault while a job uses the vault --------------------------------------


def test_delete_is_refused_while_a_backup_waits_and_works_once_it_is_stopped(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    vaults.create(deps, caller, "v")
    arn = _register(deps, caller, "src", _source(tmp_path / "src", 1000, 1))
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    with pytest.raises(Conflict, match=f"cannot be deleted while backup job {job.job_id}"):
        vaults.delete(deps, caller, "v")
    assert vaults.get(deps, caller, "v")["name"] == "v"

    backup_jobs.stop(deps, caller, job.job_id)  # CREATED -> ABORTED
    vaults.delete(deps, caller, "v")
    with pytest.raises(NotFound):
        vaults.get(deps, caller, "v")
    assert _storage_dirs(deps, caller) == []  # no directory left behind


def test_delete_during_a_running_backup_is_refused_and_the_backup_completes(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    """Before the fix the delete succeeded, the worker's recovery point insert hit the
    vault's foreign key (IntegrityError) and the vault directory stayed behind."""
    vaults.create(deps, caller, "v")
    arn = _register(deps, caller, "src", _source(tmp_path / "src", BIG, -1))
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    refused: list[str] = []

    def delete_midway(done: int) -> None:
        if done > 17 * MiB and not refused:  # a pack is in the store by now
            with pytest.raises(Conflict) as info:
                vaults.delete(deps, caller, "v")
            refused.append(str(info.value))

    job_id, state = _claim_and_run(deps, Control(delete_midway, clock))
    assert refused == [f"Backup vault v cannot be deleted while backup job {job_id} is RUNNING"]
    assert state == "COMPLETED"
    vault = vaults.get(deps, caller, "v")
    assert vault["number_of_recovery_points"] == 1
    with pytest.raises(Conflict, match="because it contains recovery points"):
        vaults.delete(deps, caller, "v")


def test_a_job_queued_into_a_deleted_vault_fails_cleanly(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    """The other order: the vault goes first. StartBackupJob then finds no vault, and a
    job queued without that check (the planner's bulk insert) fails on its worker with a
    clear message, never an IntegrityError, and recreates no storage."""
    vault = vaults.create(deps, caller, "v")
    arn = _register(deps, caller, "src", _source(tmp_path / "src", 1000, 1))
    vaults.delete(deps, caller, "v")
    with pytest.raises(NotFound, match="backup vault"):
        backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))

    row = {
        "job_id": "0b1e5d1e-0000-4000-8000-000000000001",
        "account_id": caller.account_id,
        "region": caller.region,
        "backup_vault_name": "v",
        "backup_vault_arn": vault["arn"],
        "resource_arn": arn,
        "resource_type": "Directory",
        "creation_date": caller.now,
        "state": "CREATED",
        "recovery_point_arn": backup_jobs.recovery_point_arn(caller.region, caller.account_id),
    }
    with catalog.db.transaction(deps.engine) as conn:
        catalog.schedule_runs.create_jobs(conn, [row])
    worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
    assert worker.run_once() == "FAILED"
    failed = backup_jobs.get(deps, caller, row["job_id"])
    assert "backup vault not found" in failed.status_message
    assert _storage_dirs(deps, caller) == []
    with catalog.db.transaction(deps.engine) as conn:
        assert [m.vault_arn for m in catalog.maintenance.orphan_prunes(conn)] == [vault["arn"]]
    worker.sweep_once()  # the orphan mark of a vault that is gone is simply dropped
    with catalog.db.transaction(deps.engine) as conn:
        assert catalog.maintenance.orphan_prunes(conn) == []


# --- a failed backup leaves nothing that nothing reclaims ------------------------------


def _packs(root: Path) -> set[str]:
    files = (root / "data").rglob("*")
    return {p.name for p in files if p.is_file() and not p.name.startswith(local.TEMP_PREFIX)}


def _temps(root: Path) -> set[str]:
    return {p.name for p in root.rglob(local.TEMP_PREFIX + "*")}


def _referenced_packs(deps: Deps, caller: Caller, name: str) -> set[str]:
    with vaults.open_repository(deps, vaults.get(deps, caller, name)) as repo:
        names: set[str] = set()
        for _rp_id, manifest in repo.manifests():
            names |= prune.packs_of(repo, manifest)
        assert check.check(repo).ok
    return {n.rsplit("/", 1)[-1] for n in names}


def _stopped_after(limit: int, clock: FakeClock) -> Control:
    def stop(done: int) -> None:
        if done > limit:
            raise JobStopped(job_id="-", detail="stopped by the test")

    return Control(stop, clock)


def test_a_stopped_backup_leaves_packs_that_the_sweep_collects_after_the_grace_period(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    vaults.create(deps, caller, "v")
    root = _vault_root(deps, caller, "v")
    small = _register(deps, caller, "small", _source(tmp_path / "small", 100_000, 7))
    big = _register(deps, caller, "big", _source(tmp_path / "big", BIG, -1))
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", small, ROLE))
    assert _claim_and_run(deps, Control())[1] == "COMPLETED"
    kept = _referenced_packs(deps, caller, "v")

    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", big, ROLE))
    assert _claim_and_run(deps, _stopped_after(33 * MiB, clock))[1] == "ABORTED"
    orphans = _packs(root) - kept
    assert len(orphans) >= 2  # whole 16 MiB packs nothing references
    # a put killed between its temporary file and the link leaves one; a put in flight
    # has a fresh one
    stale, fresh = root / "data" / ".sv-tmp-killed", root / "data" / ".sv-tmp-inflight"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y" * 1000)
    then = clock.now().timestamp() - 10
    os.utime(stale, (then, then))

    worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
    worker.sweep_once()  # within the grace period: nothing goes
    assert _packs(root) - kept == orphans and _temps(root) == {stale.name, fresh.name}

    clock.advance(vaults.ORPHAN_GRACE.total_seconds() + 1)
    os.utime(fresh, (clock.now().timestamp(), clock.now().timestamp()))
    worker.sweep_once()
    assert _packs(root) == kept  # no pack that no recovery point references
    assert _referenced_packs(deps, caller, "v") == kept  # the completed point is whole
    assert _temps(root) == {fresh.name}  # only the stale temporary file went
    with catalog.db.transaction(deps.engine) as conn:
        assert catalog.maintenance.orphan_prunes(conn) == []  # the mark went with the prune


def test_the_sweep_never_collects_the_packs_of_a_backup_still_running(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    """A failed backup marks the vault; while another backup runs into it (its packs are
    not referenced until its manifest lands) the due prune waits, even when the clock
    has moved past the grace period and the running backup's repository lock looks
    stale by age. Once that backup is done, the prune collects only the orphans."""
    vaults.create(deps, caller, "v")
    root = _vault_root(deps, caller, "v")
    first = _register(deps, caller, "first", _source(tmp_path / "first", BIG, -1))
    second = _register(deps, caller, "second", _source(tmp_path / "second", BIG, -1))
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", first, ROLE))
    assert _claim_and_run(deps, _stopped_after(33 * MiB, clock))[1] == "ABORTED"
    orphans = _packs(root)
    assert len(orphans) >= 2

    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", second, ROLE))
    paused, resume = threading.Event(), threading.Event()

    def pause_once(done: int) -> None:
        if done > 33 * MiB and not paused.is_set():
            paused.set()
            assert resume.wait(60)

    result: list[tuple[str, str]] = []
    lease = 10 * vaults.ORPHAN_GRACE.total_seconds()  # the test's control sends no heartbeats
    thread = threading.Thread(
        target=lambda: result.append(_claim_and_run(deps, Control(pause_once, clock), lease))
    )
    thread.start()
    try:
        assert paused.wait(60)
        deadline = time.monotonic() + 30
        while not (_packs(root) - orphans) and time.monotonic() < deadline:
            time.sleep(0.05)  # the pool uploads the packs already filled
        fresh = _packs(root) - orphans
        assert fresh  # one landed pack is enough; how many are full at the pause varies
        clock.advance(vaults.ORPHAN_GRACE.total_seconds() + 1)
        worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
        worker.sweep_once()
        assert _packs(root) >= fresh | orphans  # nothing collected under a running backup
    finally:
        resume.set()
        thread.join(60)
    assert result and result[0][1] == "COMPLETED"
    worker.sweep_once()
    assert _packs(root) == _referenced_packs(deps, caller, "v")
    assert not (orphans & _packs(root))


# --- a failed CreateBackupVault leaves nothing behind ----------------------------------


class _RacingKeys(ServerVaultKeys):
    """Vault keys that let another CreateBackupVault of the same name win the race
    between the name check and the catalog insert (the window a concurrent create hits)."""

    def __init__(self, root_secret: bytes) -> None:
        super().__init__(root_secret)
        self.rival: Callable[[], object] | None = None

    def choose(self, *, region: str, account_id: str, requested: str | None) -> tuple[str, str]:
        rival, self.rival = self.rival, None
        if rival is not None:
            rival()
        return super().choose(region=region, account_id=account_id, requested=requested)


class _BrokenWrapper:
    name = "broken"

    def params(self) -> dict[str, Any]:
        return {}

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        raise NotFound(kind="key", name="arn:aws:kms:us-east-1:111122223333:key/gone")

    def unwrap(self, wrapped: bytes, aad: bytes, params: dict[str, Any]) -> bytes:
        raise AssertionError("never called")


class _BrokenKeys(ServerVaultKeys):
    def wrapper(self, key_arn: str) -> Any:
        return _BrokenWrapper()


def _with_keys(deps: Deps, keys: ServerVaultKeys) -> Deps:
    return Deps(engine=deps.engine, clock=deps.clock, storage=deps.storage, vault_keys=keys)


def test_a_create_that_loses_the_name_race_removes_its_repository(
    deps: Deps, caller: Caller
) -> None:
    keys = _RacingKeys(b"k" * 32)
    racing = _with_keys(deps, keys)
    keys.rival = lambda: vaults.create(racing, caller, "v")
    with pytest.raises(AlreadyExists):
        vaults.create(racing, caller, "v")
    winner = vaults.get(deps, caller, "v")
    assert _storage_dirs(deps, caller) == [Path(winner["storage_url"]).name]  # loser's gone
    wrapper = keys.wrapper(winner["encryption_key_arn"])
    with Repository.open(local.LocalBackend(winner["storage_url"]), wrapper=wrapper) as repo:
        assert repo.config.id == winner["repository_id"]


def test_a_create_whose_key_fails_leaves_no_row_and_no_directory(
    deps: Deps, caller: Caller
) -> None:
    with pytest.raises(InvalidInput):  # the backup model's code for an unusable key
        vaults.create(_with_keys(deps, _BrokenKeys(b"k" * 32)), caller, "v")
    with pytest.raises(NotFound):
        vaults.get(deps, caller, "v")
    assert _storage_dirs(deps, caller) == []
