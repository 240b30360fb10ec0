"""A rerun reads its changed large files on RERUN_READERS threads at once (an initial
backup on one), and the tree is the one the single reader gives."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver
from snowvault.testing import FakeRepository

from .test_archiver_roundtrip import NOW

BIG = 300_000  # above SMALL_CHUNKS' minimum: chunked on a reader thread


class PairedFS(archiver.FileSystem):
    """Holds the read of ``a.bin`` until the read of ``b.bin`` has begun: one reader
    thread would wait for itself (then ``together`` is False after the timeout)."""

    def __init__(self) -> None:
        self.b_started = threading.Event()
        self.together: bool | None = None

    def chunks(self, path: bytes, chunker: Any) -> Any:
        if path.endswith(b"b.bin"):
            self.b_started.set()
        elif path.endswith(b"a.bin"):
            self.together = self.b_started.wait(timeout=5)
        return super().chunks(path, chunker)


def _write(src: Path, seed: int) -> None:
    rng = random.Random(seed)
    for name in ("a.bin", "b.bin"):
        (src / name).write_bytes(rng.randbytes(BIG))


@pytest.mark.parametrize("readers", [1, 2])
def test_a_rerun_reads_its_changed_files_on_reader_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readers: int
) -> None:
    monkeypatch.setattr(archiver, "RERUN_READERS", readers)
    src = tmp_path / "src"
    src.mkdir()
    _write(src, 1)
    repo = FakeRepository()
    first = archiver.backup_paths(repo, [src], now=NOW)
    _write(src, 2)
    fs = PairedFS()
    again = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, fs=fs)
    assert fs.together is (readers == 2)
    alone = archiver.backup_paths(FakeRepository(), [src], now=NOW)
    assert again.manifest.tree == alone.manifest.tree
    assert again.manifest.summary.files_changed == 2
