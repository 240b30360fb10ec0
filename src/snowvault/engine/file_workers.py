"""File contents read, chunked, hashed, compressed and sealed in worker processes.

The archiver's walk (scandir, lstat, xattrs, nodes, trees) stays on one thread; the
per-byte work -- open, read, FastCDC, keyed BLAKE3, zstd, AES-GCM -- goes to a few
worker processes, so it runs on every core and outside the parent's GIL (on threads the
many tiny blobs spent more time handing the GIL over than compressing, and chunking
held it).

    pool = ContentWorkers.start(repo)                 # None when it cannot help
    slot = pool.add(path, size, sparse, large, owner) # filled as results come back
    pool.wait([slot])                                 # slot.done; slot.parts or .error
    pool.close()

One task is a batch of up to ``BATCH_FILES`` small files or ``BATCH_BYTES`` bytes
(sizes as stat saw them), read whole; a large file goes ``SEGMENT_BYTES`` at a time,
each segment from the chunk boundary where the last one stopped. A worker returns, per
item, its parts (blob id and length, or a hole) or the OSError that stopped it, and one
buffer of the blobs it sealed (each ``nonce || ciphertext || tag``, exactly as the
single-process path seals them). The parent appends those to its open packs through the
repository, which alone writes packs and index segments, so the repository format, the
write order and kill safety are those of the single-process path. A worker skips zstd
and AES for a blob the repository held when the pool started (it gets that id set
once) or that it sealed itself; the parent drops the rare blob two workers both sealed.

At most ``MAX_BATCHES`` batches are in flight, so memory stays bounded. Workers get
only the blob-id and encryption subkeys, not the repository secret. They are spawned (a fresh
interpreter importing only this module's few dependencies), never forked from a
possibly threaded server process, and they are this process's own children, so
``/usr/bin/time`` and rusage count their CPU time and memory with the backup's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from snowvault.engine import compression, packs
from snowvault.engine.chunker import Chunker, ChunkerParams, all_zero
from snowvault.engine.crypto import primitives

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

BATCH_FILES = 256
BATCH_BYTES = 4 * 1024 * 1024
SEGMENT_BYTES = 32 * 1024 * 1024
"""A large file is cut this much at a time (then on from its last boundary)."""
SEAL_BYTES = 4 * 1024 * 1024
"""Cut chunks are sealed in runs of about this many bytes, on any worker."""
MAX_BATCHES = 6

# --------------------------------------------------------------------------- worker side

_worker: dict[str, Any] = {}

Parts = list[tuple[bytes | None, int]]
Item = tuple[bytes, int, int, bool, "tuple[int, ...] | None"]
"""(path, offset, size, sparse, lengths), one of three kinds of work:

- offset -1: a small file, read whole (``size`` as stat saw it) and sealed as one blob;
- lengths None: *cut* a large file from ``offset`` (a chunk boundary) for about ``size``
  bytes and return only the chunk lengths (cheap, so the walk along a file is quick);
- lengths given: *seal* those chunks, which start at ``offset`` -- any worker can, so
  one large file is hashed, compressed and encrypted on every core.
"""
FileResult = tuple["Parts | None", "tuple[int, str] | None", int, "list[int] | None"]
"""(parts, error, next offset or -1, chunk lengths of a cut)."""
Made = list[tuple[bytes, int, int, int]]


def _die_with(parent: int) -> None:
    """SIGKILL this worker when the backup process dies (a killed backup must leave no
    orphan behind, holding its pipes open): Linux's parent-death signal, a check for a
    parent that died before it was set, and a thread that checks again twice a second."""
    import ctypes  # here: a backup that starts no worker does not import it

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:  # and a watchdog, for a worker stuck writing to a dead pipe
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="sv-parent-watch", daemon=True).start()


def _init_worker(
    parent: int | None,
    id_key: bytes,
    enc_key: bytes,
    level: int,
    chunker: ChunkerParams,
    known: bytes,
) -> None:
    if parent is not None:  # None: called in-process (tests)
        _die_with(parent)
    _worker["id_key"] = id_key
    _worker["sealer"] = primitives.Sealer(enc_key)
    _worker["level"] = level
    _worker["chunker"] = Chunker(chunker)
    _worker["seen"] = {known[i : i + 32] for i in range(0, len(known), 32)}


def _read(path: bytes, size: int, offset: int = 0) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = os.pread(fd, size, offset)
        while len(data) < size and (more := os.pread(fd, size - len(data), offset + len(data))):
            data += more
        return data
    finally:
        os.close(fd)


class _Sealing:
    """One task's output buffer: blobs sealed as the single-process path seals them."""

    def __init__(self) -> None:
        self.id_key: bytes = _worker["id_key"]
        self.sealer: primitives.Sealer = _worker["sealer"]
        self.level: int = _worker["level"]
        self.seen: set[bytes] = _worker["seen"]
        self.buf = bytearray()
        self.made: Made = []

    def part(self, data: bytes | memoryview, sparse: bool) -> tuple[bytes | None, int]:
        n = len(data)
        if sparse and all_zero(data):
            return (None, n)
        blob_id = primitives.keyed_hash(self.id_key, data)
        if blob_id not in self.seen:
            self.seen.add(blob_id)
            nonce, sealed = self.sealer.seal_blob(
                *compression.encode(data, self.level), packs.blob_aad(packs.KIND_DATA, blob_id)
            )
            start = len(self.buf)
            self.buf += nonce
            self.buf += sealed
            self.made.append((blob_id, start, len(self.buf) - start, n))
        return (blob_id, n)


def _cut(path: bytes, offset: int, budget: int) -> FileResult:
    """Chunk lengths of a large file from ``offset`` (a chunk boundary) until about
    ``budget`` bytes. FastCDC starts every chunk afresh, so resuming at a boundary cuts
    exactly where one pass over the whole file would."""
    chunker: Chunker = _worker["chunker"]
    lengths: list[int] = []
    done = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        for view in chunker.chunks(fh):
            lengths.append(len(view))
            done += len(view)
            if done >= budget:
                return None, None, offset + done, lengths
    return None, None, -1, lengths


def _seal(out: _Sealing, path: bytes, offset: int, lengths: tuple[int, ...], sparse: bool) -> Parts:
    """The parts of chunks cut before (a file that shrank since ends short)."""
    data = memoryview(_read(path, sum(lengths), offset))
    parts: Parts = []
    pos = 0
    for n in lengths:
        piece = data[pos : pos + n]
        if not piece:
            break
        parts.append(out.part(piece, sparse))
        pos += n
    return parts


def store_batch(items: list[Item]) -> tuple[list[FileResult], bytes, Made]:
    """Worker task: every item's result, and the blobs it sealed (id, start, stored, raw)."""
    out = _Sealing()
    results: list[FileResult] = []
    for path, offset, size, sparse, lengths in items:
        try:
            if offset < 0:
                data = _read(path, size)
                results.append(([out.part(data, sparse)] if data else [], None, -1, None))
            elif lengths is None:
                results.append(_cut(path, offset, size))
            else:
                results.append((_seal(out, path, offset, lengths, sparse), None, -1, None))
        except OSError as exc:
            err = (exc.errno or 0, exc.strerror or type(exc).__name__)
            results.append((None, err, -1, None))
    return results, bytes(out.buf), out.made


# --------------------------------------------------------------------------- parent side


@dataclass(eq=False, slots=True)
class Slot:
    """One file's place in the work. Its contents come back in pieces (one for a small
    file; a sealed run of chunks each for a large one); ``done`` once all are back and
    no more are to be cut, then ``parts`` (in file order) or ``error`` says what it is."""

    path: bytes
    sparse: bool
    pieces: list[Parts | None] = field(default_factory=list)
    outstanding: int = 0
    cutting: bool = False
    error: OSError | None = None
    done: bool = False
    owner: Any = None

    @property
    def parts(self) -> Parts:
        return [part for piece in self.pieces if piece is not None for part in piece]


@dataclass(eq=False)
class _Batch:
    items: list[Item] = field(default_factory=list)
    slots: list[tuple[Slot, int]] = field(default_factory=list)  # piece index, -1: a cut
    nbytes: int = 0


class ContentWorkers:
    """The parent's end: batches work, bounds what is in flight, harvests what is done."""

    def __init__(self, repo: Any, processes: int) -> None:
        self._repo = repo
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None  # started on the first batch
        self._batch = _Batch()
        self._inflight: dict[Future[Any], _Batch] = {}
        self.on_done: Any = None  # callable(slot, nbytes), set by the archiver

    @classmethod
    def start(cls, repo: Any, processes: int | None = None) -> ContentWorkers | None:
        """A pool of ``processes`` workers for ``repo`` (a Repository), or None for the
        single-process path: ``processes`` 0, or None and ``SNOWVAULT_ENGINE_PROCESSES``
        unset or 0 (the default, see below), or a store that is not a Repository (tests'
        fakes, agents).

        Off by default: on the project's shared 2-core machine the workers cost about a
        quarter more CPU (the sealed bytes cross a pipe, large files are read twice,
        two interpreters start) and were not faster in wall time under load
        (docs/benchmarks.md); ``SNOWVAULT_ENGINE_PROCESSES=2`` turns them on."""
        from snowvault.engine.repository import Repository  # workers need not import it

        if not isinstance(repo, Repository):
            return None
        if processes is None:
            env = os.environ.get("SNOWVAULT_ENGINE_PROCESSES", "")
            processes = int(env) if env.isdigit() else 0
        if processes < 1:
            return None
        return cls(repo, processes)

    def add(self, path: bytes, size: int, sparse: bool, large: bool, owner: Any) -> Slot:
        slot = Slot(path, sparse, owner=owner)
        if large:
            slot.cutting = True
            self._put(slot, -1, (path, 0, SEGMENT_BYTES, sparse, None), 0)
        else:
            self._piece(slot, (path, -1, size, sparse, None), size)
        return slot

    def _piece(self, slot: Slot, item: Item, nbytes: int) -> None:
        slot.pieces.append(None)
        slot.outstanding += 1
        self._put(slot, len(slot.pieces) - 1, item, nbytes)

    def _put(self, slot: Slot, index: int, item: Item, nbytes: int) -> None:
        batch = self._batch
        batch.items.append(item)
        batch.slots.append((slot, index))
        batch.nbytes += nbytes
        if batch.nbytes >= BATCH_BYTES or len(batch.items) >= BATCH_FILES:
            self.flush()

    def _get_pool(self) -> ProcessPoolExecutor:
        """Started lazily: a backup that reads no file (no change) starts none."""
        if self._pool is None:
            # here, not at import: multiprocessing's pool machinery is ~30 ms of imports
            # every backup would pay, and only this pool needs it
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            repo = self._repo
            keys = repo._keys
            known = b"".join(repo.own_blob_ids())  # never an id only a keyed pack claims
            # spawn: never a fork of a threaded (server) process, and the workers are
            # this process's own children, so their CPU and memory count as its own
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self._processes,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(
                    os.getpid(),
                    keys._id_key,
                    keys._enc_key,
                    repo.config.compression_level,
                    repo.config.chunker,
                    known,
                ),
            )
        return self._pool

    def flush(self) -> None:
        batch = self._batch
        if not batch.items:
            return
        self._batch = _Batch()
        while len(self._inflight) >= MAX_BATCHES:
            self._harvest(block=True)
        self._inflight[self._get_pool().submit(store_batch, batch.items)] = batch
        self._harvest(block=False)

    def wait(self, slots: list[Slot]) -> None:
        """Harvest until every one of ``slots`` is done."""
        for slot in slots:
            while not slot.done:
                if self._batch.items:
                    self.flush()
                else:
                    self._harvest(block=True)

    def _harvest(self, *, block: bool) -> None:
        """Take in every finished batch (waiting for one first when ``block``)."""
        if block:
            futures.wait(self._inflight, return_when=futures.FIRST_COMPLETED)
        for future in [f for f in self._inflight if f.done()]:
            self._take(self._inflight.pop(future), future.result())

    def _take(self, batch: _Batch, result: tuple[list[FileResult], bytes, Made]) -> None:
        results, buf, made = result
        self._adopt(buf, made)
        for (slot, index), item, (parts, err, next_offset, lengths) in zip(
            batch.slots, batch.items, results, strict=True
        ):
            nbytes = 0
            if err is not None:
                slot.error = slot.error or OSError(err[0], err[1])
                slot.cutting = False
            if index < 0:  # a cut: seal what it found, cut on from where it stopped
                if lengths and slot.error is None:
                    self._seal_runs(slot, item[1], lengths)
                if next_offset >= 0 and slot.error is None:
                    cut = (slot.path, next_offset, SEGMENT_BYTES, slot.sparse, None)
                    self._put(slot, -1, cut, 0)
                else:
                    slot.cutting = False
            else:
                slot.pieces[index] = parts
                slot.outstanding -= 1
                nbytes = sum(n for _, n in parts or ())
            if not slot.cutting and not slot.outstanding and not slot.done:
                slot.done = True
            if self.on_done is not None:
                self.on_done(slot, nbytes)

    def _seal_runs(self, slot: Slot, offset: int, lengths: list[int]) -> None:
        run: list[int] = []
        start, total = offset, 0
        last = len(lengths) - 1
        for i, n in enumerate(lengths):
            run.append(n)
            total += n
            if total >= SEAL_BYTES or i == last:
                self._piece(slot, (slot.path, start, total, slot.sparse, tuple(run)), total)
                start += total
                run, total = [], 0

    def _adopt(self, buf: bytes, made: Made) -> None:
        """Hand the sealed blobs to the repository's open data pack (dropping ones
        another worker or an earlier batch already stored)."""
        repo = self._repo
        view = memoryview(buf)
        for blob_id, start, stored, raw in made:
            with repo._lock:
                if repo.has_blob(blob_id):  # a keyed pack's id is not the writer's
                    continue
                repo._pending.add(blob_id)
            repo._append(packs.KIND_DATA, blob_id, b"", view[start : start + stored], raw)

    def close(self) -> None:
        """Harvest everything still in flight (and what it leads to), then stop."""
        try:
            while self._batch.items or self._inflight:
                if self._batch.items:
                    self.flush()
                else:
                    self._harvest(block=True)
        finally:
            self.abort()

    def abort(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
