"""small_files: a batch is sent when full or when a result of it is asked for, so the
archiver's batches fill across directories (not one batch per finished directory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, restorer, small_files
from snowvault.testing import FakeRepository

from .test_archiver_roundtrip import NOW


class _Store:
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes:
        return bytes(data)[:4].ljust(4, b"-")


def test_asking_for_a_result_of_the_open_batch_sends_it() -> None:
    small = small_files.SmallFiles(_Store(), workers=1)
    first = small.add(b"abcd")
    second = small.add(b"efgh")
    assert first.result() == b"abcd"  # no flush: the ref sends its own batch
    assert second.result() == b"efgh"
    later = small.add(b"ijkl")  # a new open batch
    assert later.batch is not first.batch
    small.close()
    assert later.result() == b"ijkl"


def test_a_sent_batch_is_not_sent_again() -> None:
    small = small_files.SmallFiles(_Store(), workers=1)
    ref = small.add(b"abcd")
    small.flush()
    future = ref.batch.future
    assert ref.result() == b"abcd" and ref.batch.future is future
    small.close()


class _CountingBatches(small_files.SmallFiles):
    """Counts the batches sent; full at 1,000 bytes (ten of the test's files)."""

    sent = 0

    def __init__(self, repo: Any) -> None:
        super().__init__(repo, batch_bytes=1000)

    def flush(self) -> None:
        if self._batch.data:
            type(self).sent += 1
        super().flush()


def _tree(root: Path, dirs: int, files: int) -> None:
    for d in range(dirs):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        for f in range(files):
            (sub / f"f{f}.txt").write_bytes(f"dir {d:03d} file {f}\n".encode().ljust(100, b"."))


def test_finished_directories_share_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 directories of 3 files of 100 bytes, finished one by one during the walk
    (pending entries capped at 40, ten directories): the 180 files go in 18 full
    batches, where sending the open batch at every finished directory gave 53."""
    _tree(tmp_path / "src", 60, 3)
    monkeypatch.setattr(archiver, "MAX_PENDING_NODES", 40)
    monkeypatch.setattr(small_files, "SmallFiles", _CountingBatches)
    _CountingBatches.sent = 0
    repo = FakeRepository()
    result = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, walkers=0)
    assert result.manifest.summary.files_new == 180
    assert _CountingBatches.sent == 18
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    for d in (0, 59):
        for f in range(3):
            rel = os.path.join(f"d{d:03d}", f"f{f}.txt")
            assert (tmp_path / "out" / rel).read_bytes() == (tmp_path / "src" / rel).read_bytes()


def test_a_stored_batch_answers_without_its_future() -> None:
    """Once the batch's thread has stored it, its refs read the results directly (no
    future lock per file); before that they wait on the future."""
    small = small_files.SmallFiles(_Store(), workers=1)
    refs = [small.add(bytes([65 + i]) * 4) for i in range(3)]
    small.close()
    batch = refs[0].batch
    assert batch.results is not None

    class _NoFuture:
        def result(self) -> Any:
            raise AssertionError("waited on the future of a stored batch")

    batch.future = _NoFuture()  # type: ignore[assignment]
    assert [r.result() for r in refs] == [b"AAAA", b"BBBB", b"CCCC"]


def test_a_probe_that_fails_once_is_asked_again_before_the_batch_is_advised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached file's first RWF_NOWAIT read fails now and then; the second answers."""
    paths = []
    for i in range(20):
        (tmp_path / f"f{i:02d}").write_bytes(b"x" * (i + 1))
        paths.append(os.fsencode(tmp_path / f"f{i:02d}"))
    advised: list[int] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, *args: advised.append(fd))
    asked: dict[bytes, int] = {}

    def fails_once(path: bytes) -> bool:
        asked[path] = asked.get(path, 0) + 1
        return asked[path] > 1 or path != paths[10]

    monkeypatch.setattr(small_files, "_cached", fails_once)
    small_files.readahead(paths)
    assert advised == [] and asked[paths[10]] == 2
    monkeypatch.setattr(small_files, "_cached", lambda path: path != paths[10])
    small_files.readahead(paths)  # a probe that fails twice: the batch is advised
    assert len(advised) == 20
