"""Small files uploaded in batches: one hand-off to a worker thread per batch, not per file.

The archiver reads a small file whole and calls :meth:`SmallFiles.add`, which returns a
:class:`BatchRef` — where the file's blob id will be once its batch is stored. A batch is
handed to one of a few threads of our own when it reaches ``batch_bytes`` or 512 files;
at most ``max_batches`` are in flight, so memory stays bounded however many files there are.

    small = SmallFiles(repo)
    ref = small.add(data)
    small.close()                    # flushes the last batch and waits
    ref.result()                     # the blob id

Knows nothing of trees or manifests; depends only on a store with ``add_blob``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol


class BlobAdder(Protocol):
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...


class BatchRef:
    """Where one small file's blob id will be: slot ``index`` of a batch."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def result(self) -> bytes:
        assert self.batch.future is not None
        return self.batch.future.result()[self.index]


@dataclass(eq=False)
class Batch:
    data: list[bytes]
    nbytes: int = 0
    future: Future[list[bytes]] | None = None


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

    def _store(self, batch: Batch) -> list[bytes]:
        try:
            return [self._repo.add_blob("data", d) for d in batch.data]
        finally:
            batch.data = []
            self._slots.release()

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
