"""Small files read and uploaded in batches: one hand-off to a thread per batch, not per file.

The archiver hands a small file over with :meth:`SmallFiles.add_file` (its path: the
batch's thread opens, reads and stores it, so the walking thread does not wait for
those system calls and the GIL after each) or, already read, with :meth:`SmallFiles.add`.
Either returns where the result will be once its batch is stored. A batch is handed to
one of a few threads of our own when it reaches ``batch_bytes`` or 512 files; at most
``max_batches`` are in flight, so memory stays bounded however many files there are.

    small = SmallFiles(repo)
    ref = small.add(data)
    file_ref = small.add_file(fs, path, size, sparse)
    small.close()                    # flushes the last batch and waits
    ref.result()                     # the blob id
    file_ref.outcome()               # (blob id or None for a hole, length), or the OSError

Knows nothing of trees or manifests; depends only on a store with ``add_blob``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol


class BlobAdder(Protocol):
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...


class Reader(Protocol):
    def read_small(self, path: bytes, size: int) -> bytes: ...


Outcome = tuple[bytes | None, int] | OSError
"""A file read on a batch thread: (blob id, or None for a sparse file all zeros, length)
or the error that stopped the read."""


class BatchRef:
    """Where one small file's blob id will be: slot ``index`` of a batch."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def result(self) -> bytes:
        assert self.batch.future is not None
        blob_id: bytes = self.batch.future.result()[self.index]
        return blob_id


class FileRef(BatchRef):
    """Where a small file read by its batch's thread will be (see :data:`Outcome`)."""

    __slots__ = ()

    def outcome(self) -> Outcome:
        assert self.batch.future is not None
        outcome: Outcome = self.batch.future.result()[self.index]
        return outcome


@dataclass(eq=False)
class Batch:
    data: list[bytes | tuple[Reader, bytes, int, bool]]
    nbytes: int = 0
    future: Future[list[Any]] | None = None


class SmallFiles:
    """Uploads small files in batches on a few threads of our own: one hand-off per batch
    instead of one future per file (the per-file hop dominated small-file backups).
    At most ``max_batches`` batches are in flight, so memory stays bounded."""

    def __init__(
        self, repo: BlobAdder, workers: int = 2, max_batches: int = 4, batch_bytes: int = 4 << 20
    ) -> None:
        self._repo = repo
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sv-small")
        self._slots = threading.BoundedSemaphore(max_batches)
        self._batch_bytes = batch_bytes
        self._batch = Batch([])

    def add(self, data: bytes) -> BatchRef:
        batch = self._batch
        ref = BatchRef(batch, len(batch.data))
        batch.data.append(data)
        batch.nbytes += len(data)
        if batch.nbytes >= self._batch_bytes or len(batch.data) >= 512:
            self.flush()
        return ref

    def add_file(self, fs: Reader, path: bytes, size: int, sparse: bool) -> FileRef:
        """A file of ``size`` bytes (as stat saw them) to read whole on a batch thread."""
        batch = self._batch
        ref = FileRef(batch, len(batch.data))
        batch.data.append((fs, path, size, sparse))
        batch.nbytes += size
        if batch.nbytes >= self._batch_bytes or len(batch.data) >= 512:
            self.flush()
        return ref

    def flush(self) -> None:
        batch = self._batch
        if not batch.data:
            return
        self._batch = Batch([])
        self._slots.acquire()
        try:
            batch.future = self._pool.submit(self._store, batch)
        except BaseException:
            self._slots.release()
            raise

    def _store(self, batch: Batch) -> list[Any]:
        try:
            out: list[Any] = []
            for item in batch.data:
                if isinstance(item, bytes):
                    out.append(self._repo.add_blob("data", item))
                else:
                    out.append(self._read_and_store(*item))
            return out
        finally:
            batch.data = []
            self._slots.release()

    def _read_and_store(self, fs: Reader, path: bytes, size: int, sparse: bool) -> Outcome:
        try:
            data = fs.read_small(path, size)
        except OSError as exc:
            return exc
        if sparse and data == bytes(len(data)):
            return (None, len(data))
        return (self._repo.add_blob("data", data), len(data))

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
