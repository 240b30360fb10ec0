"""The worker checks host paths again right before it reads or writes: a source or a
restore target (or a parent of it) swapped for a symlink after the API call is judged by
where it leads now. Real services, a real worker, a real file system in tmp_path (the
``deps`` fixture allows tmp_path and protects tmp_path/storage, the vault storage)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, resources, restore_jobs, vaults
from snowvault.control.services.base import Caller, Deps

ROLE = "arn:aws:iam::111122223333:role/backup"


def _worker_run(deps: Deps) -> str | None:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("alpha")
    return src


def _register(deps: Deps, caller: Caller, source: Path) -> str:
    row = resources.register(
        deps, caller, resource_type="Directory", name="src", source=str(source)
    )
    return str(row["arn"])


def _backup(deps: Deps, caller: Caller, arn: str) -> dict[str, Any]:
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    _worker_run(deps)
    return backup_jobs.get(deps, caller, job.job_id)


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the rule does not allow (outside the deps fixture's tmp_path)."""
    path = tmp_path_factory.mktemp("outside")
    (path / "secret.txt").write_text("not yours")
    return path


@pytest.mark.parametrize("lead_to", ["storage", "outside"])
def test_a_source_swapped_for_a_symlink_after_registration_is_not_read(
    deps: Deps, caller: Caller, tmp_path: Path, outside: Path, lead_to: str
) -> None:
    vaults.create(deps, caller, "v")
    src = _source(tmp_path)
    arn = _register(deps, caller, src)
    shutil.rmtree(src)
    forbidden = Path(deps.storage.location("us-east-1")) if lead_to == "storage" else outside
    src.symlink_to(forbidden, target_is_directory=True)

    job = _backup(deps, caller, arn)

    assert job.state == "FAILED"
    expected = "inside the snowvault data directory" if lead_to == "storage" else "not under"
    assert expected in job.status_message
    assert "is refused" in job.status_message
    assert vaults.get(deps, caller, "v")["number_of_recovery_points"] == 0


def test_an_unchanged_source_is_still_backed_up(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    vaults.create(deps, caller, "v")
    job = _backup(deps, caller, _register(deps, caller, _source(tmp_path)))
    assert job.state == "COMPLETED", job.status_message


def _point(deps: Deps, caller: Caller, tmp_path: Path) -> str:
    vaults.create(deps, caller, "v")
    job = _backup(deps, caller, _register(deps, caller, _source(tmp_path)))
    assert job.state == "COMPLETED", job.status_message
    return str(job.recovery_point_arn)


def _restore(deps: Deps, caller: Caller, rp_arn: str, target: Path) -> str:
    job = restore_jobs.start(
        deps, caller, recovery_point_arn=rp_arn, metadata={"targetPath": str(target)}
    )
    return str(job.restore_job_id)


def test_a_target_swapped_for_a_symlink_after_the_call_is_not_written(
    deps: Deps, caller: Caller, tmp_path: Path, outside: Path
) -> None:
    rp = _point(deps, caller, tmp_path)
    target = tmp_path / "out"  # allowed and new at the call
    job_id = _restore(deps, caller, rp, target)
    empty = outside / "empty"  # empty: the old run-time check (exists, not empty) passed
    empty.mkdir()
    target.symlink_to(empty, target_is_directory=True)

    assert _worker_run(deps) == "FAILED"

    job = restore_jobs.get(deps, caller, job_id)
    assert "resolves to" in job.status_message and "not under" in job.status_message
    assert os.listdir(empty) == []


def test_a_parent_of_the_target_swapped_into_the_storage_is_not_written(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    rp = _point(deps, caller, tmp_path)
    parent = tmp_path / "restores"
    parent.mkdir()
    job_id = _restore(deps, caller, rp, parent / "out")
    storage = Path(deps.storage.location("us-east-1"))
    before = sorted(p.relative_to(storage) for p in storage.rglob("*"))
    parent.rmdir()
    parent.symlink_to(storage, target_is_directory=True)

    assert _worker_run(deps) == "FAILED"

    job = restore_jobs.get(deps, caller, job_id)
    assert "inside the snowvault data directory" in job.status_message
    assert sorted(p.relative_to(storage) for p in storage.rglob("*")) == before


def test_a_restore_into_an_allowed_dir_still_works_and_writes_the_resolved_path(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    rp = _point(deps, caller, tmp_path)
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"  # a symlink inside the allowed tree is fine
    alias.symlink_to(real, target_is_directory=True)
    job_id = _restore(deps, caller, rp, alias / "out")

    assert _worker_run(deps) == "COMPLETED"

    assert restore_jobs.get(deps, caller, job_id).status == "COMPLETED"
    restored = [p for p in (real / "out").rglob("a.txt")]
    assert [p.read_text() for p in restored] == ["alpha"]


def test_the_call_itself_refuses_before_any_job_exists(
    deps: Deps, caller: Caller, tmp_path: Path, outside: Path
) -> None:
    rp = _point(deps, caller, tmp_path)
    for target in (outside, tmp_path, Path(deps.storage.location("us-east-1")) / "x"):
        with pytest.raises(host_paths.PathRefused):
            _restore(deps, caller, rp, target)
    filters = restore_jobs.catalog.restore_jobs.RestoreJobFilters()
    assert restore_jobs.list_jobs(deps, caller, filters).items == []
    with pytest.raises(host_paths.PathRefused, match="not under an allowed path"):
        _register(deps, caller, outside)
