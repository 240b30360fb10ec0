"""small_files: each batch asks the kernel to read its files ahead before reading them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import small_files


class _Store:
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes:
        return bytes(reversed(bytes(data)))[:8] + len(data).to_bytes(4, "big")


class _Reader:
    def __init__(self, events: list[tuple[str, Any]]) -> None:
        self.events = events

    def read_small(self, path: bytes, size: int) -> bytes:
        self.events.append(("read", path))
        with open(path, "rb") as fh:
            return fh.read(size)


def _files(tmp_path: Path, n: int) -> list[bytes]:
    paths = []
    for i in range(n):
        p = tmp_path / f"f{i:03d}"
        p.write_bytes(bytes([i % 251]) * (i + 1))
        paths.append(os.fsencode(p))
    return paths


def test_the_batch_hints_its_file_paths_before_it_reads_any(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    reader = _Reader(events)
    paths = _files(tmp_path, 5)
    small = small_files.SmallFiles(
        _Store(), workers=1, hint=lambda ps: events.append(("hint", list(ps)))
    )
    small.add(b"in memory, not a path")
    refs = [small.add_file(reader, p, i + 1, False) for i, p in enumerate(paths)]
    small.close()
    assert events[0] == ("hint", paths)
    assert events[1:] == [("read", p) for p in paths]
    assert [r.outcome() for r in refs][2] == (_Store().add_blob("data", bytes([2]) * 3), 3)


def test_outcomes_are_the_same_with_and_without_the_hint(tmp_path: Path) -> None:
    paths = _files(tmp_path, 40)
    results = []
    for hint in (small_files.readahead, None):
        small = small_files.SmallFiles(_Store(), batch_bytes=64, hint=hint)
        refs = [small.add_file(_Reader([]), p, i + 1, False) for i, p in enumerate(paths)]
        small.close()
        results.append([r.outcome() for r in refs])
    assert results[0] == results[1]
    assert len(results[0]) == 40


def _record_advice(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    advised: list[int] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        advised.append(os.fstat(fd).st_ino)
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    return advised


def test_an_uncached_batch_is_advised_for_its_regular_files_only_and_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = tmp_path / "regular"
    regular.write_bytes(b"x" * 10_000)
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would hang the batch
    (tmp_path / "link").symlink_to(regular)
    advised = _record_advice(monkeypatch)
    monkeypatch.setattr(small_files, "_cached", lambda path: False)
    names = ["missing", "dir", "fifo", "link", "regular"]
    small_files.readahead([os.fsencode(tmp_path / n) for n in names])
    assert advised == [regular.stat().st_ino]


def test_a_batch_whose_probes_are_cached_is_not_advised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path, 20)
    advised = _record_advice(monkeypatch)
    probed: list[bytes] = []

    def cached(path: bytes) -> bool:
        probed.append(path)
        return True

    monkeypatch.setattr(small_files, "_cached", cached)
    small_files.readahead(paths)
    assert advised == []
    assert probed == paths[::5][: small_files.PROBES]
    assert len(set(probed)) == small_files.PROBES


def test_one_uncached_probe_advises_the_whole_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path, 20)
    advised = _record_advice(monkeypatch)
    monkeypatch.setattr(small_files, "_cached", lambda path: path != paths[15])
    small_files.readahead(paths)
    assert len(advised) == 20


def test_nothing_to_read_counts_as_cached(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert small_files._cached(os.fsencode(tmp_path / "missing"))
    assert small_files._cached(os.fsencode(tmp_path / "dir"))
