"""Services, a real worker and a vault repository for one plugin's integration story:
a SQLite catalog and local storage in tmp_path, secrets sealable, FakeClock.

    deps = plugin_stories.make_deps(tmp_path, clock, [MySQL()])
    caller = plugin_stories.make_caller(deps)
    arn = resources.register(deps, caller, resource_type="MySQL", ...)["arn"]
    job = plugin_stories.backup(deps, caller, arn)        # runs it, returns the job
    plugin_stories.stored(tmp_path)                       # bytes in the vault's storage
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpers import service_world
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, restore_jobs, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.plugins.base import ResourcePlugin
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"


def make_deps(tmp_path: Path, clock: FakeClock, plugins: Sequence[ResourcePlugin]) -> Deps:
    """Deps over tmp_path (allowed host paths: tmp_path, minus the storage)."""
    return service_world.make_deps(tmp_path, clock, plugins=plugins)


def make_caller(deps: Deps, vault: str = "v") -> Caller:
    """The account's root, with vault ``vault`` created."""
    caller = service_world.root_caller(deps)
    vaults.create(deps, caller, vault)
    return caller


def run(deps: Deps) -> str | None:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def backup(deps: Deps, caller: Caller, arn: str, vault: str = "v") -> backup_jobs.BackupJob:
    """Start and run a backup job; the job as it ended (any state)."""
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest(vault, arn, ROLE))
    run(deps)
    return backup_jobs.get(deps, caller, job.job_id)


def restore(deps: Deps, caller: Caller, rp_arn: str, metadata: dict[str, str]) -> Any:
    """Start and run a restore job; the job as it ended (any status)."""
    job = restore_jobs.start(deps, caller, recovery_point_arn=rp_arn, metadata=metadata)
    run(deps)
    return restore_jobs.get(deps, caller, job.restore_job_id)


def stored(tmp_path: Path) -> int:
    """Bytes in the vault storage under tmp_path."""
    return sum(p.stat().st_size for p in (tmp_path / "storage").rglob("*") if p.is_file())
