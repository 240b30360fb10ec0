"""The delete-triggered prune (``recovery_points.prune_pending``) waits while a backup
job runs into the vault, whatever the repository lock says.

A running backup's packs are referenced by no manifest until it ends; the repository
lock is what kept a prune off them, and a lock whose refresh failed ages out after
30 minutes (or is never written, as here: the job is claimed but its worker has not
opened the vault yet). The catalog's RUNNING job is the record prune now trusts, as
the orphan prune already did.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from snowvault.control import catalog
from snowvault.control.services import backup_jobs, recovery_points, resources, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.engine import check
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"


class _Control:
    def report(self, **progress: Any) -> None:
        pass


def _source(root: Path, seed: int) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "blob").write_bytes(random.Random(seed).randbytes(200_000))
    return str(root)


def _packs(root: Path) -> set[str]:
    return {p.name for p in (root / "data").rglob("*") if p.is_file()}


def test_prune_pending_waits_for_the_backup_running_into_the_vault(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    vault = vaults.create(deps, caller, "v")
    root = Path(vault["storage_url"])
    arn = resources.register(
        deps, caller, resource_type="Directory", name="r", source=_source(tmp_path / "r", 1)
    )["arn"]
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    first = backup_jobs.JOB_KIND.claim(deps, "w", [], 60)
    assert first is not None
    assert backup_jobs.JOB_KIND.execute(deps, first, "w", _Control()) == "COMPLETED"
    recovery_points.delete(deps, caller, "v", first.recovery_point_arn)  # marks for prune

    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    running = backup_jobs.JOB_KIND.claim(deps, "w", [], 60)
    assert running is not None  # RUNNING in the catalog; no repository lock anywhere
    with vaults.open_repository(deps, vault) as repo:  # what it wrote so far: no manifest
        repo.add_blob("data", os.urandom(100_000))
    unreferenced = _packs(root)
    assert unreferenced

    clock.advance(3600)
    assert recovery_points.prune_pending(deps) == []
    assert _packs(root) >= unreferenced  # nothing collected under the running job
    with catalog.db.read_transaction(deps.engine) as conn:
        assert [m.vault_arn for m in catalog.maintenance.due_prunes(conn)] == [vault["arn"]]

    assert backup_jobs.JOB_KIND.execute(deps, running, "w", _Control()) == "COMPLETED"
    assert recovery_points.prune_pending(deps) == [vault["arn"]]
    with vaults.open_repository(deps, vault) as repo:
        assert check.check(repo, read_data=True).ok
    with catalog.db.read_transaction(deps.engine) as conn:
        assert catalog.maintenance.due_prunes(conn) == []
