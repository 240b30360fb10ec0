"""The Directory plugin's restore mark: an attempt marks its target with the restore
job's id while it writes; a later attempt of the SAME job finishes a partial restore
it finds marked with that id (a killed attempt's files, half-written files and temp
files included); any other mark, or none, is the usual refusal of a non-empty target.
A real file system in tmp_path and the engine's restorer over a FakeRepository; the
"killed attempt" is what such an attempt leaves on the disk, laid out by hand."""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snowvault.control.model import host_paths
from snowvault.engine import archiver, restorer
from snowvault.plugins import directory
from snowvault.plugins.base import Progress, ProgressCallback, Resource, RestoreRequest
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing import FakeRepository

PLUGIN = directory.Directory()
NOW = datetime(2026, 3, 4, tzinfo=UTC)
JOB = "6f1c2a0e-0d3b-4c59-9a51-6a2f0e7b1c11"
OTHER_JOB = "0b8e7d1f-5a64-4f0e-8c2d-3e9b7a6c5d44"


class _RepoSource:
    """The plugin's Source over a FakeRepository point; records the target's mark as
    the restore starts writing (what a kill at that moment would leave)."""

    def __init__(self, repo: FakeRepository, rp_id: str) -> None:
        self.repo, self.rp_id = repo, rp_id
        self.marks: list[str | None] = []
        self.overwrites: list[bool] = []
        self.result = restorer.RestoreResult(0, 0)

    def to_directory(
        self, target: str, *, include: Sequence[str], overwrite: bool, progress: ProgressCallback
    ) -> None:
        self.marks.append(directory.restore_mark(target))
        self.overwrites.append(overwrite)
        self.result = restorer.restore(
            self.repo, self.rp_id, target, include=include, overwrite=overwrite
        )

    def read_file(self, name: str) -> bytes:
        raise AssertionError("Directory never reads single files")

    def open(self, path: str) -> Any:
        raise AssertionError("Directory never opens entries")

    def entries(self) -> list[Any]:
        raise AssertionError("Directory never lists entries")

    def info(self) -> dict[str, Any]:
        return {}


class _Failing(_RepoSource):
    """A restore that fails after writing (the engine raised, the link broke)."""

    def to_directory(
        self, target: str, *, include: Sequence[str], overwrite: bool, progress: ProgressCallback
    ) -> None:
        super().to_directory(target, include=include, overwrite=overwrite, progress=progress)
        raise OSError(5, "Input/output error")


@pytest.fixture
def policy(tmp_path: Path) -> host_paths.Policy:
    (tmp_path / "allowed").mkdir()
    return host_paths.Policy.build([str(tmp_path / "allowed")], [], [], os.path.realpath)


@pytest.fixture
def point(tmp_path: Path) -> tuple[Path, FakeRepository, str]:
    """A backed-up tree: its source, the repository and the point's id."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    (src / "d" / "inner.txt").write_bytes(b"inner")
    repo = FakeRepository()
    return src, repo, archiver.backup_paths(repo, [src], now=NOW).rp_id


def _request(
    target: Path,
    source: _RepoSource,
    policy: host_paths.Policy,
    job_id: str | None,
    overwrite: str = "false",
) -> RestoreRequest:
    resource = Resource("arn:aws:snowvault:r:1:directory/x", "Directory", "x", "/x")
    metadata = {"targetPath": str(target), "overwrite": overwrite}

    def progress(p: Progress) -> None:
        pass

    return RestoreRequest(resource, metadata, policy, source, progress, job_id=job_id)


def _same_tree(source: Path, target: Path) -> None:
    diff = filecmp.dircmp(source, target)
    assert not (diff.left_only or diff.right_only), diff.report()
    for name in diff.common_files:
        assert (source / name).read_bytes() == (target / name).read_bytes(), name
    for name in diff.common_dirs:
        _same_tree(source / name, target / name)


def _killed_attempt(src: Path, target: Path, job_id: str) -> None:
    """What an attempt killed in the middle leaves: its mark, two whole files, one cut
    short, a temp file of an overwrite restore, a directory made and not filled."""
    (target / "d").mkdir(parents=True)
    os.setxattr(target, directory.MARK, job_id.encode())
    for name in ("f0.bin", "f1.bin"):
        (target / name).write_bytes((src / name).read_bytes())
    (target / "f2.bin").write_bytes((src / "f2.bin").read_bytes()[:100])
    (target / "f3.bin.snowvault-restore").write_bytes(b"half of f3")


def test_an_attempt_marks_its_target_while_it_writes_and_unmarks_it_after(
    tmp_path: Path, policy: host_paths.Policy, point: tuple[Path, FakeRepository, str]
) -> None:
    src, repo, rp = point
    target = tmp_path / "allowed" / "new"
    source = _RepoSource(repo, rp)
    PLUGIN.restore(_request(target, source, policy, JOB))
    assert source.marks == [JOB] and source.overwrites == [False]
    assert directory.restore_mark(str(target)) is None
    assert directory.MARK not in os.listxattr(target)
    _same_tree(src, target)
    # outside a job (no id) nothing is marked
    bare = _RepoSource(repo, rp)
    PLUGIN.restore(_request(tmp_path / "allowed" / "bare", bare, policy, None))
    assert bare.marks == [None]


def test_a_failed_attempt_leaves_its_mark_for_the_retry(
    tmp_path: Path, policy: host_paths.Policy, point: tuple[Path, FakeRepository, str]
) -> None:
    src, repo, rp = point
    target = tmp_path / "allowed" / "new"
    with pytest.raises(OSError, match="Input/output"):
        PLUGIN.restore(_request(target, _Failing(repo, rp), policy, JOB))
    assert directory.restore_mark(str(target)) == JOB
    retry = _RepoSource(repo, rp)
    PLUGIN.restore(_request(target, retry, policy, JOB))
    assert retry.overwrites == [True]  # its own files are there: written over
    assert directory.restore_mark(str(target)) is None
    _same_tree(src, target)


@pytest.mark.parametrize("overwrite", ["true", "false"])
def test_a_retry_of_the_same_job_finishes_the_partial_restore_it_finds_marked(
    tmp_path: Path,
    policy: host_paths.Policy,
    point: tuple[Path, FakeRepository, str],
    overwrite: str,
) -> None:
    src, repo, rp = point
    target = tmp_path / "allowed" / "restored"
    _killed_attempt(src, target, JOB)
    retry = _RepoSource(repo, rp)
    PLUGIN.restore(_request(target, retry, policy, JOB, overwrite))
    assert retry.marks == [JOB] and retry.overwrites == [True]
    assert retry.result.errors == []
    _same_tree(src, target)  # the cut file whole, the temp file gone, nothing extra
    assert directory.restore_mark(str(target)) is None


@pytest.mark.parametrize("mark", [OTHER_JOB, None, f"{JOB} "])
def test_a_mark_of_another_job_or_none_is_the_usual_refusal(
    tmp_path: Path,
    policy: host_paths.Policy,
    point: tuple[Path, FakeRepository, str],
    mark: str | None,
) -> None:
    _, repo, rp = point
    target = tmp_path / "allowed" / "theirs"
    target.mkdir()
    (target / "f0.bin").write_bytes(b"data that was there before")
    if mark is not None:
        os.setxattr(target, directory.MARK, mark.encode())
    source = _RepoSource(repo, rp)
    with pytest.raises(InvalidRestoreTarget, match="is not empty"):
        PLUGIN.restore(_request(target, source, policy, JOB))
    assert source.marks == []  # nothing was written
    assert (target / "f0.bin").read_bytes() == b"data that was there before"
    assert directory.restore_mark(str(target)) == mark  # left as it was


def test_the_call_time_check_and_a_request_without_a_job_never_honour_a_mark(
    tmp_path: Path, policy: host_paths.Policy, point: tuple[Path, FakeRepository, str]
) -> None:
    _, repo, rp = point
    target = tmp_path / "allowed" / "planted"
    target.mkdir()
    (target / "keep.txt").write_bytes(b"mine")
    os.setxattr(target, directory.MARK, JOB.encode())
    with pytest.raises(InvalidRestoreTarget, match="is not empty"):
        PLUGIN.check_restore({"targetPath": str(target)}, policy)  # StartRestoreJob
    with pytest.raises(InvalidRestoreTarget, match="is not empty"):
        PLUGIN.restore(_request(target, _RepoSource(repo, rp), policy, None))
    assert directory.check_target({"targetPath": str(target)}, policy, JOB) == (
        str(target),
        True,
    )
    assert (target / "keep.txt").read_bytes() == b"mine"


def test_a_symlinked_target_is_neither_read_for_a_mark_nor_marked(
    tmp_path: Path, policy: host_paths.Policy, point: tuple[Path, FakeRepository, str]
) -> None:
    """A link to a directory marked with the job's id, outside what the host-path rule
    allows, is refused by the rule (judged where it points) before any mark counts."""
    _, repo, rp = point
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    os.setxattr(outside, directory.MARK, JOB.encode())
    link = tmp_path / "allowed" / "link"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(host_paths.PathRefused):
        PLUGIN.restore(_request(link, _RepoSource(repo, rp), policy, JOB))
    assert (outside / "secret").read_bytes() == b"not yours"


def test_the_mark_is_removed_from_a_target_the_restore_made_read_only(tmp_path: Path) -> None:
    """A point whose root directory was 0555 leaves the target without the owner's write
    bit, which removing a user xattr needs (for anyone but root): the bit is added for
    the removal only. Run as the directory's owner, not root (as root: in a forked child
    that became the unprivileged user 65534, the directory's owner, in a directory of
    /tmp it can reach, as pytest's tmp_path is 0700 root's)."""
    if os.geteuid() != 0:
        _unmark_read_only(tmp_path / "ro", None)
        return
    base = Path(tempfile.mkdtemp(prefix="sv-unmark-"))
    try:
        os.chmod(base, 0o755)
        _unmark_read_only(base / "ro", 65534)
    finally:
        os.chmod(base / "ro", 0o755)
        shutil.rmtree(base)


def _unmark_read_only(target: Path, user: int | None) -> None:
    target.mkdir()
    os.setxattr(target, directory.MARK, JOB.encode())
    os.chmod(target, 0o555)
    if user is None:
        directory._unmark(str(target), JOB)
    else:
        os.chown(target, user, user)
        pid = os.fork()
        if pid == 0:  # the child: only system calls, then out without cleanup
            code = 1
            try:
                os.setresgid(user, user, user)
                os.setresuid(user, user, user)
                assert os.getxattr(target, directory.MARK) == JOB.encode()  # it can reach it
                try:
                    os.removexattr(target, directory.MARK)
                    code = 2  # no need for the chmod: the test would prove nothing
                except PermissionError:
                    directory._unmark(str(target), JOB)
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert directory.MARK not in os.listxattr(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o555
