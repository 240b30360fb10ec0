"""A Directory restore job whose embedded worker died in the middle is finished by the
job's next attempt (the lease swept back to PENDING, another run): the killed attempt's
files, its cut file and its temp files are its own, marked with the job's id, so the
retry writes over them; a target marked by anyone else is refused as before.

The "kill" is an exception that no handler of the worker catches (a BaseException)
raised from the restorer's writing of the third file: the job stays RUNNING under the
dead worker's lease, with what the attempt wrote on the disk, as after a SIGKILL."""

from __future__ import annotations

import filecmp
import os
import random
from pathlib import Path
from typing import Any

import pytest

from snowvault.control.scheduler import runner
from snowvault.control.services import backup_jobs, resources, restore_jobs, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.engine import restorer
from snowvault.plugins import directory
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"
LEASE = 30.0


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the worker catches it."""


def _worker(deps: Deps) -> runner.Worker:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=LEASE, worker_id="w1"))


def _point(deps: Deps, caller: Caller, tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = random.Random(11)
    for i in range(8):
        (src / f"f{i}.bin").write_bytes(rng.randbytes(3000 + i))
    (src / "sub" / "g.txt").write_bytes(b"g" * 100)
    vaults.create(deps, caller, "v")
    arn = resources.register(deps, caller, resource_type="Directory", name="src", source=str(src))[
        "arn"
    ]
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", str(arn), ROLE))
    assert _worker(deps).run_once() == "COMPLETED"
    return src, str(backup_jobs.get(deps, caller, job.job_id).recovery_point_arn)


def _kill_on_third_file(monkeypatch: pytest.MonkeyPatch) -> None:
    original = restorer._Restorer._write_content
    calls = []

    def write(self: Any, fd: int, rel: bytes, node: Any) -> tuple[int, int]:
        calls.append(rel)
        if len(calls) == 3:  # half the file's bytes on the disk, then dead
            os.write(fd, b"cut short")
            os.close(fd)
            raise Killed
        return original(self, fd, rel, node)

    monkeypatch.setattr(restorer._Restorer, "_write_content", write)


def _same_tree(source: Path, target: Path) -> None:
    diff = filecmp.dircmp(source, target)
    assert not (diff.left_only or diff.right_only), diff.report()
    for name in diff.common_files:
        assert (source / name).read_bytes() == (target / name).read_bytes(), name
    for name in diff.common_dirs:
        _same_tree(source / name, target / name)


@pytest.mark.parametrize("overwrite", ["true", "false"])
def test_a_restore_whose_worker_was_killed_is_finished_by_the_retry(
    deps: Deps,
    caller: Caller,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overwrite: str,
) -> None:
    src, rp_arn = _point(deps, caller, tmp_path)
    target = tmp_path / "restored"
    job = restore_jobs.start(
        deps,
        caller,
        recovery_point_arn=rp_arn,
        metadata={"targetPath": str(target), "overwrite": overwrite},
    )
    job_id = job.restore_job_id
    with monkeypatch.context() as patch:
        _kill_on_third_file(patch)
        with pytest.raises(Killed):
            _worker(deps).run_once()
    left = sorted(os.listdir(target))
    assert left and directory.restore_mark(str(target)) == job_id, left
    if overwrite == "true":  # the cut file is the temp file the retry meets
        assert any(n.endswith(".snowvault-restore") for n in left), left
    assert restore_jobs.get(deps, caller, job_id).status == "RUNNING"

    clock.advance(LEASE + 1)
    _worker(deps).sweep_once()
    assert restore_jobs.get(deps, caller, job_id).status == "PENDING"
    assert _worker(deps).run_once() == "COMPLETED"
    _same_tree(src, target)
    assert directory.restore_mark(str(target)) is None


def test_a_target_marked_by_another_job_is_refused_and_left_alone(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    _, rp_arn = _point(deps, caller, tmp_path)
    target = tmp_path / "restored"
    job = restore_jobs.start(
        deps, caller, recovery_point_arn=rp_arn, metadata={"targetPath": str(target)}
    )
    job_id = job.restore_job_id
    target.mkdir()  # filled after the call's check, marked with some other job's id
    (target / "f0.bin").write_bytes(b"not the job's")
    os.setxattr(target, directory.MARK, b"1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert _worker(deps).run_once() == "FAILED"
    message = restore_jobs.get(deps, caller, job_id).status_message or ""
    assert "is not empty" in message and "\n" not in message, message
    assert (target / "f0.bin").read_bytes() == b"not the job's"
