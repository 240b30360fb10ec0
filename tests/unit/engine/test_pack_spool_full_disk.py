"""A pack whose write fails (a full disk) is refused, never published short (pack_spool.py).

Found by a backup into a full file system: the failed write's traceback kept a view of the
gathered small blobs, the next write could not grow them (``BufferError``, a traceback to
the user), and at close the repository tried to publish the same pack, whose file lacked
bytes its name and index entries promise: had the disk had room again by then, a pack
short of data would have been published and later backups deduplicated against it."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from snowvault.engine import check, errors, pack_spool
from snowvault.engine.backends.local import TEMP_PREFIX, LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.pack_spool import PackSpool
from snowvault.engine.repository import Repository

KDF = KdfParams.for_tests()


def test_a_failed_write_fails_every_later_write_and_the_publish(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    tmp = tmp_path / "data" / f"{TEMP_PREFIX}full"
    tmp.touch()
    spool = PackSpool(str(tmp_path), os.open("/dev/full", os.O_WRONLY), str(tmp))
    spool.write(b"n" * 12, b"s" * 1000)  # gathered, not written yet
    with pytest.raises(errors.BackendError, match="No space left"):
        spool.write(random.Random(1).randbytes(pack_spool.WRITE_BYTES))
    with pytest.raises(errors.BackendError, match="earlier write failed"):
        spool.write(b"n" * 12, b"s" * 1000)  # was BufferError: the buffer was pinned
    with pytest.raises(errors.BackendError, match="earlier write failed"):
        spool.publish(b"header")
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == [tmp]  # unpublished
    spool.discard()  # as the repository's upload does whatever happened
    assert not tmp.exists()


def _one_by_one(repo: Repository, blobs: list[bytes]) -> list[bytes]:
    return [repo.add_blob("data", blob) for blob in blobs]


def _as_a_batch(repo: Repository, blobs: list[bytes]) -> list[bytes]:
    return repo.add_blobs("data", blobs)  # one run: written at once, not gathered


@pytest.mark.parametrize("add", [_one_by_one, _as_a_batch])
def test_a_repository_whose_disk_fills_publishes_no_short_pack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    add: Callable[[Repository, list[bytes]], list[bytes]],
) -> None:
    backend = LocalBackend(tmp_path / "repo")
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=1024 * 1024)
    first = add(repo, [random.Random(i).randbytes(3_000) for i in range(10)])
    repo.flush()  # a pack before the disk fills
    real_write = os.write
    full = {"on": True}

    def write(fd: int, data: bytes | memoryview) -> int:
        if full["on"] and fd > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(pack_spool.os, "write", write)
    # small blobs, 600 KB: gathered and written 256 KiB at a time, or one batch's run;
    # the write's own error either way (a batch's was a BufferError from the run's view)
    with pytest.raises(errors.BackendError, match="No space left"):
        add(repo, [random.Random(100 + i).randbytes(3_000) for i in range(200)])
    full["on"] = False  # the disk has room again before the close publishes
    with pytest.raises(errors.BackendError, match="earlier write failed"):
        repo.close()
    reopened = Repository.open(LocalBackend(tmp_path / "repo"), password="pw")
    assert check.check(reopened, read_data=True).problems == []
    assert [reopened.get_blob(b) for b in first] == [
        random.Random(i).randbytes(3_000) for i in range(10)
    ]
