"""Running jobs report progress while they run, not only at the end.

The worker's progress path is driven step by step: a control object receives each
report the job makes, stores it with a real heartbeat (``JobLease.beat``) and reads the
job back the way DescribeBackupJob / DescribeRestoreJob do. The FakeClock moves one
second per report, so the engine's throttled progress meter may report again.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowvault.control.model import jobs as job_rules
from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, resources, restore_jobs, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"
BIG = 6 * 1024 * 1024  # one large file: many content-defined chunks


class _SteppedControl:
    """A JobControl that beats after every report and records what a client would see."""

    def __init__(self, lease: runner.JobLease, clock: FakeClock, read: Callable[[], Any]) -> None:
        self.lease = lease
        self.clock = clock
        self.read = read
        self.seen: list[tuple[float | None, int | None]] = []

    def report(self, **progress: Any) -> None:
        self.lease.report(**progress)
        self.lease.beat()
        row = self.read()
        self.seen.append((row.percent_done, row.bytes_transferred))
        self.clock.advance(1.0)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(7).randbytes(BIG))
    (src / "small.txt").write_bytes(b"x" * 1000)
    return src


def _backup(
    deps: Deps, caller: Caller, clock: FakeClock, src: Path
) -> tuple[_SteppedControl, dict[str, Any]]:
    vaults.create(deps, caller, "v")
    arn = resources.register(deps, caller, resource_type="Directory", name="src", source=str(src))[
        "arn"
    ]
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", str(arn), ROLE))
    claimed = backup_jobs.JOB_KIND.claim(deps, "w1", [], 30.0)
    assert claimed is not None
    lease = runner.JobLease(deps, backup_jobs.JOB_KIND, claimed, "w1", 30.0)
    control = _SteppedControl(lease, clock, lambda: backup_jobs.get(deps, caller, job.job_id))
    assert backup_jobs.JOB_KIND.execute(deps, claimed, "w1", control) == "COMPLETED"
    done = backup_jobs.get(deps, caller, job.job_id)
    assert done.percent_done == 100.0
    return control, done


def test_backup_job_reports_intermediate_percent_done(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    control, _done = _backup(deps, caller, clock, _source(tmp_path))
    # strictly inside (0, 100), and not just the last report before completion (99.9%)
    middle = [(p, b) for p, b in control.seen if p is not None and 0.0 < p < 99.0]
    assert middle, f"no intermediate progress in {control.seen}"
    assert all(b is not None and 0 < b < BIG for _, b in middle)
    percents = [p for p, _ in control.seen if p is not None]
    assert percents == sorted(percents)


def test_restore_job_reports_intermediate_percent_done(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    src = _source(tmp_path)
    _control, done = _backup(deps, caller, clock, src)
    rp_arn = done.recovery_point_arn
    target = tmp_path / "out"
    job = restore_jobs.start(
        deps, caller, recovery_point_arn=rp_arn, metadata={"targetPath": str(target)}
    )
    claimed = restore_jobs.JOB_KIND.claim(deps, "w1", [], 30.0)
    assert claimed is not None
    lease = runner.JobLease(deps, restore_jobs.JOB_KIND, claimed, "w1", 30.0)
    control = _SteppedControl(
        lease, clock, lambda: restore_jobs.get(deps, caller, job.restore_job_id)
    )
    assert restore_jobs.JOB_KIND.execute(deps, claimed, "w1", control) == "COMPLETED"
    middle = [p for p, _ in control.seen if p is not None and 0.0 < p < 99.0]
    assert middle, f"no intermediate progress in {control.seen}"
    assert (target / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


def test_heartbeats_come_every_progress_interval_not_every_third_of_the_lease(
    deps: Deps,
) -> None:
    blank = {f.name: None for f in dataclasses.fields(job_rules.BackupJob)}
    job = job_rules.BackupJob.from_row({**blank, "job_id": "j1"})
    fast = runner.JobLease(deps, backup_jobs.JOB_KIND, job, "w1", 60.0, progress_seconds=0.5)
    assert fast._interval == 0.5
    short_lease = runner.JobLease(deps, backup_jobs.JOB_KIND, job, "w1", 0.9)
    assert short_lease._interval == 0.3
