"""Small files read and uploaded in batches: one hand-off to a thread per batch, not per file.

The archiver hands a small file over with :meth:`SmallFiles.add_file` (its path: the
batch's thread opens, reads and stores it, so the walking thread does not wait for
those system calls and the GIL after each) or, already read, with :meth:`SmallFiles.add`.
Either returns where the result will be once its batch is stored. A batch is handed to
a thread of our own (``WORKERS``) when it reaches ``batch_bytes`` or 512 files, or when a
result of the batch still open is asked for (the archiver's walk asks when it builds a
directory's tree): the batches fill across directories instead of being sent whenever a
directory is finished, which had cut the benchmark's full set into ~1,600 batches of ~15
files in its source trees (73 batches after); at most ``max_batches`` are in flight, so
memory stays bounded however many files there are.

Before a batch's thread reads its files it asks the kernel to read them all ahead
(:func:`readahead`: ``posix_fadvise(WILLNEED)`` per file), so the disk gets a whole batch
of reads at once instead of one file at a time. On a source whose pages are not cached
(any first backup of data not just read; also any tree borg has just backed up: borg
drops the pages it read) the 100,000 small files of the benchmark's full set took 13.8 s
to read one by one on one thread, 2.0 s with the hint per 512 files. A batch whose
files are already cached is not hinted (:func:`readahead` asks a few of them first):
there the hint only cost CPU.

    small = SmallFiles(repo)
    ref = small.add(data)
    file_ref = small.add_file(fs, path, size, sparse)
    ref.result()                     # the blob id (sends the batch if it is still open)
    small.close()                    # flushes the last batch and waits
    file_ref.outcome()               # (blob id or None for a hole, length), or the OSError

``add_file(..., xattrs=True)`` reads the file with ``fs.read_small_xattrs`` (its bytes and
its extended attributes through one descriptor) and gives ``(blob id, length, xattrs)``.

Knows nothing of trees or manifests; depends only on a store with ``add_blob`` (and
uses its ``add_blobs`` if it has one).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast


class BlobAdder(Protocol):
    """A store; one with ``add_blobs(kind, datas) -> ids`` (:class:`Repository`) gets each
    batch in one call."""

    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...


class Reader(Protocol):
    def read_small(self, path: bytes, size: int) -> bytes: ...


class XattrReader(Reader, Protocol):
    def read_small_xattrs(
        self, path: bytes, size: int, dir_fd: int | None = None
    ) -> tuple[bytes, Any]: ...


Outcome = tuple[bytes | None, int] | tuple[bytes | None, int, Any] | OSError
"""A file read on a batch thread: (blob id, or None for a sparse file all zeros, length),
with its xattrs third when asked for, or the error that stopped the read."""


PROBES = 4
"""Files of a batch checked for cached pages before the batch is read ahead."""
STORE_BYTES = 256 * 1024
"""Bytes of a batch's blobs stored with one ``add_blobs`` call: the lock, the nonces and
the pack write are shared by ~50 of the full set's small files, and a thread holds at
most this much read, compressed and sealed at once beyond its batch."""
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def readahead(paths: list[bytes]) -> None:
    """Unless ``paths`` look cached, ask the kernel to start reading each regular file of
    them into the page cache, and return at once.

    A hint: nothing is read here, a path that cannot be opened or is no longer a regular
    file is skipped, the batch's own read reports any error. Whether the batch is cached
    is asked of :data:`PROBES` of its files spread through it (a one-byte read that may
    not wait for the disk, ``RWF_NOWAIT``): on cached pages the hint only cost CPU (2-3 s
    more in a backup of the full set, ~20 us per file with the walk's thread in the GIL).
    A probe that fails is asked once more: the first such read of a file whose pages are
    all cached fails now and then (45 of 30,000 of the full set's small files, each
    answered at once by a second read; in a backup of the full set 46 of its 257
    batches, 22,000 files, were hinted for nothing), where a file that must come from
    the disk does not arrive in between.

    Who may ask: the archiver, with paths its walk found under the backed-up source; a
    file is opened as the read will open it (read-only, not following a symbolic link)
    and non-blocking, so a FIFO swapped in since the walk cannot stall the batch."""
    step = max(1, len(paths) // PROBES)
    if all(_cached(path) or _cached(path) for path in paths[::step][:PROBES]):
        return
    for path in paths:
        fd = _open_regular(path)
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            os.close(fd)


def _cached(path: bytes) -> bool:
    """True if the first byte of ``path`` is in the page cache, or there is nothing to
    read ahead (not a regular file, or gone); False if it must come from the disk or the
    system cannot tell."""
    fd = _open_regular(path)
    if fd < 0:
        return True
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: cannot tell
        return False
    finally:
        os.close(fd)
    return True


def _open_regular(path: bytes) -> int:
    """A read-only descriptor of ``path`` if it is a regular file, else -1."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return -1
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return -1


class _Dirs:
    """The descriptor of the directory a batch's files are being read from (the batch's
    thread only): a batch holds files of a few directories, in the walk's order, so each
    is opened once and its files by name in it (``openat``), not each by its whole path
    (the path walks of the opens were ~3% of the CPU of the full set's initial backup).
    None when the directory cannot be opened: the read then opens the path, and reports
    whatever error that gives."""

    __slots__ = ("fd", "path")

    def __init__(self) -> None:
        self.path: bytes | None = None
        self.fd: int | None = None

    def of(self, path: bytes) -> int | None:
        cut = path.rfind(b"/")
        if cut <= 0:
            return None  # a name in "/" or a relative one: opened by its path
        parent = path[:cut]  # os.path.dirname's answer here, without its calls
        if parent != self.path:
            self.close()
            self.path = parent
            with contextlib.suppress(OSError):
                self.fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = self.path = None


class BatchRef:
    """Where one small file's blob id will be: slot ``index`` of a batch."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def result(self) -> bytes:
        blob_id: bytes = self.batch.outcomes()[self.index]
        return blob_id


class FileRef(BatchRef):
    """Where a small file read by its batch's thread will be (see :data:`Outcome`)."""

    __slots__ = ()

    def outcome(self) -> Outcome:
        outcome: Outcome = self.batch.outcomes()[self.index]
        return outcome


@dataclass(eq=False)
class Batch:
    data: list[bytes | tuple[Reader, bytes, int, bool, bool]]
    owner: SmallFiles
    nbytes: int = 0
    future: Future[list[Any]] | None = None
    results: list[Any] | None = None  # set by its thread once every file is stored

    def sent(self) -> Future[list[Any]]:
        """The batch's future; the open batch is sent first (by the thread that adds)."""
        if self.future is None:
            self.owner.flush()
        assert self.future is not None
        return self.future

    def outcomes(self) -> list[Any]:
        """Every file's result, in order: taken as they are once the batch's thread has
        set them (a future's ``result()`` takes its lock, ~1.5 us per small file on the
        walk's thread), else waited for (and the batch sent if it is still open)."""
        results = self.results
        if results is None:
            results = self.sent().result()
        return results


WORKERS = 1
"""Threads that read and store batches. Two fought the walk's thread and each other for
the GIL at every system call of every file (open, read, listxattr, close) and took more
CPU than they overlapped. Full set's initial backup, alternated against two: in one
process (SNOWVAULT_ENGINE_WALKERS=0) CPU 10.07/10.23/10.90 -> 8.57/8.35/9.17 s and wall
7.02/7.04/7.75 -> 6.30/6.14/6.86 s; with its walk worker CPU 8.16/8.12/7.80/8.06 ->
7.88/7.94/7.67/7.87 s; its 100,000 small files alone, their pages dropped before each
run (read from the disk, the hints per batch at work), wall 3.12/2.85/2.66 ->
2.56/2.55/2.42 s."""


class SmallFiles:
    """Uploads small files in batches on a thread of our own: one hand-off per batch
    instead of one future per file (the per-file hop dominated small-file backups).
    At most ``max_batches`` batches are in flight, so memory stays bounded."""

    def __init__(
        self,
        repo: BlobAdder,
        workers: int = WORKERS,
        max_batches: int = 4,
        batch_bytes: int = 4 << 20,
        hint: Callable[[list[bytes]], None] | None = readahead,
    ) -> None:
        self._repo = repo
        self._add_blobs: Callable[[Any, list[bytes]], list[bytes]] = getattr(
            repo, "add_blobs", self._one_by_one
        )
        self._hint = hint
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sv-small")
        self._slots = threading.BoundedSemaphore(max_batches)
        self._batch_bytes = batch_bytes
        self._batch = Batch([], self)

    def add(self, data: bytes) -> BatchRef:
        batch = self._batch
        ref = BatchRef(batch, len(batch.data))
        batch.data.append(data)
        batch.nbytes += len(data)
        if batch.nbytes >= self._batch_bytes or len(batch.data) >= 512:
            self.flush()
        return ref

    def add_file(
        self, fs: Reader, path: bytes, size: int, sparse: bool, xattrs: bool = False
    ) -> FileRef:
        """A file of ``size`` bytes (as stat saw them) to read whole on a batch thread;
        ``xattrs``: with its extended attributes (``fs`` is then an :class:`XattrReader`)."""
        batch = self._batch
        ref = FileRef(batch, len(batch.data))
        batch.data.append((fs, path, size, sparse, xattrs))
        batch.nbytes += size
        if batch.nbytes >= self._batch_bytes or len(batch.data) >= 512:
            self.flush()
        return ref

    def flush(self) -> None:
        batch = self._batch
        if not batch.data:
            return
        self._batch = Batch([], self)
        self._slots.acquire()
        try:
            batch.future = self._pool.submit(self._store, batch)
        except BaseException:
            self._slots.release()
            raise

    def _store(self, batch: Batch) -> list[Any]:
        """Read the batch's files and store them a run of up to :data:`STORE_BYTES` at a
        time, each run with one call (``add_blobs`` where the store has it)."""
        try:
            if self._hint is not None:
                self._hint([item[1] for item in batch.data if not isinstance(item, bytes)])
            out: list[Any] = [None] * len(batch.data)
            blobs: list[bytes] = []
            where: list[int] = []  # blobs[k] is the batch's item where[k]
            nbytes = 0
            dirs = _Dirs()
            for i, item in enumerate(batch.data):
                if isinstance(item, bytes):
                    data = item
                else:  # out[i]: the outcome, or the file's xattrs until it is stored
                    read, out[i] = self._read(*item, dirs)
                    if read is None:
                        continue  # the error, or a sparse file's (None, length)
                    data = read
                blobs.append(data)
                where.append(i)
                nbytes += len(data)
                if nbytes >= STORE_BYTES:
                    self._store_run(batch, out, blobs, where)
                    blobs, where, nbytes = [], [], 0
            dirs.close()
            self._store_run(batch, out, blobs, where)
            batch.results = out
            return out
        finally:
            dirs.close()
            batch.data = []
            self._slots.release()

    def _store_run(
        self, batch: Batch, out: list[Any], blobs: list[bytes], where: list[int]
    ) -> None:
        """Store ``blobs``, items ``where`` of ``batch``, and set their results in ``out``."""
        if not blobs:
            return
        ids = self._add_blobs("data", blobs)
        for i, data, blob_id in zip(where, blobs, ids, strict=True):
            item = batch.data[i]
            if isinstance(item, bytes):
                out[i] = blob_id
            elif item[4]:
                out[i] = (blob_id, len(data), out[i])  # out[i]: its xattrs (_store)
            else:
                out[i] = (blob_id, len(data))

    @staticmethod
    def _read(
        fs: Reader, path: bytes, size: int, sparse: bool, xattrs: bool, dirs: _Dirs
    ) -> tuple[bytes, Any] | tuple[None, Outcome]:
        """A file's bytes to store and its xattrs (None unless asked for), or None and its
        outcome when there is nothing to store (the error, or a sparse file's zeros)."""
        extra = None
        try:
            if xattrs:
                reader = cast(XattrReader, fs)
                data, extra = reader.read_small_xattrs(path, size, dirs.of(path))
            else:
                data = fs.read_small(path, size)
        except OSError as exc:
            return None, exc
        if sparse and data == bytes(len(data)):
            return None, ((None, len(data), extra) if xattrs else (None, len(data)))
        return data, extra

    def _one_by_one(self, kind: Any, blobs: list[bytes]) -> list[bytes]:
        return [self._repo.add_blob(kind, data) for data in blobs]

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
