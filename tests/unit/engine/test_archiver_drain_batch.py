"""When the walk is done, the open batch of small files is sent before the pending
directories are finished: its files are read while a directory waits for a large file
on the reader thread, not after it (a rerun's changed documents were read only once its
disk image was)."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from snowvault.engine import archiver
from snowvault.testing import FakeRepository

from .test_archiver_roundtrip import NOW

BIG = 300_000  # above SMALL_CHUNKS' minimum: chunked on the reader thread


class SmallFirstFS(archiver.FileSystem):
    """Holds the read of ``sub/big.bin`` until ``top.txt`` (a small file of the root,
    whose directory finishes after ``sub``) has been read by its batch thread."""

    def __init__(self) -> None:
        self.small_read = threading.Event()
        self.waited: bool | None = None

    def read_small(self, path: bytes, size: int) -> bytes:
        data = super().read_small(path, size)
        if path.endswith(b"top.txt"):
            self.small_read.set()
        return data

    def chunks(self, path: bytes, chunker: Any) -> Any:
        if path.endswith(b"big.bin"):
            self.waited = self.small_read.wait(timeout=10)
        return super().chunks(path, chunker)


def test_the_open_batch_is_read_while_a_large_file_is(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "big.bin").write_bytes(random.Random(1).randbytes(BIG))
    (src / "top.txt").write_bytes(b"small")
    fs = SmallFirstFS()
    repo = FakeRepository()
    result = archiver.backup_paths(repo, [src], now=NOW, fs=fs)
    assert fs.waited is True  # else the batch waited for the big file, which waited for it
    assert result.manifest.summary.files_new == 2 and not result.manifest.errors
