"""Runs of a large streamed restore written by worker processes, not threads.

A restore's threads share one GIL with the thread walking the trees: every system call
of a file (open, write, utime, close) and every decompression hands it over, so two
threads mostly add futex calls (strace of 13,000 files: 26,000 to 92,000 from run to
run) and wake-ups. Here the restoring process walks the trees, makes the directories and
sorts files into runs exactly as for its threads (:func:`restorer._runs`), but hands
each run, with the locations of its blobs, to one of a few worker processes; a worker
writes the run's files with the threads' own code (:class:`restorer._Restorer`, its
blobs read through :mod:`restore_reads`) and answers only counts and errors. Hard links,
special files and directory metadata stay in the restoring process, after every run is
written, as with threads.

    n = wanted(repo, files_total)                   # 0: use threads
    with ProcessFeed(restorer, n) as feed:
        feed.put(files)                             # as restorer._Feed

Who may ask / what it reaches: the workers are this process's own children (a fresh
interpreter, never forked from a possibly threaded server), talk to it over a private
socket pair, get the repository secret through it (as the backup's walk workers), read
only the pack files named in the locations they are sent, under the repository's local
directory, and write only the paths they are sent below the target (names the parent
checked, :func:`restorer.load_tree`). A SIGKILL of the restore kills its workers
(Linux's parent-death signal and a watchdog); what they leave is what a killed threaded
restore leaves (an overwrite restore's temp files, files cut short), which a retry
replaces.

By default a streamed restore of ``DEFAULT_FILES`` files or more from a
:class:`Repository` on a :class:`LocalBackend` without keyed packs, on two cores or more,
uses one worker a core; ``SNOWVAULT_ENGINE_RESTORERS=N`` asks for N (at most
``MAX_WORKERS``; 0: the threads) for any size. Every other restore uses the threads, the
reference path. Measured on a quiet machine (2 cores; the benchmark's full set, 127,000
files, 2.0 GB, restored into fresh directories, repository in the page cache): threads
15.2 s (18.6 CPU s), two workers 10.4 and 10.8 s (16.0 and 18.0 CPU s). An earlier
measure at load 6-7 (60,000 small files) had found more CPU with workers (6.5-7.9 CPU s
with threads, 7.9-10.3 with two) and no wall time it could tell: each worker's start
costs about 0.4 CPU s, and the restoring process still decodes every tree and sends
every file's metadata and blob locations, so a small restore stays on the threads.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
from dataclasses import dataclass, field
from multiprocessing import connection
from typing import TYPE_CHECKING, Any

from snowvault.engine import errors, worker_launch
from snowvault.engine.backends.local import LocalBackend

if TYPE_CHECKING:
    from snowvault.engine.restorer import _Restorer
    from snowvault.engine.tree import Node

DEFAULT_FILES: int | None = 50_000
"""A restore of this many files or more uses one worker per core unasked (None: never;
see the module's docstring). Between the media set's 2,154 files (threads: 2.2 s) and
the full set's 127,000 the crossing point is not measured."""
WINDOW = 3
"""Runs sent to a worker before its first answer is awaited (bounded memory, no idle)."""
MAX_WORKERS = 4


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def wanted(repo: Any, files_total: int) -> int:
    """How many worker processes a streamed restore of ``files_total`` files from
    ``repo`` uses (0: its threads)."""
    from snowvault.engine.repository import Repository

    if not isinstance(repo, Repository) or type(repo.backend) is not LocalBackend:
        return 0
    if repo.pack_keys():
        return 0  # keyed packs: each pack's own sealer (the workers hold only the one)
    env = os.environ.get("SNOWVAULT_ENGINE_RESTORERS", "")
    if env.isdigit():
        return min(int(env), MAX_WORKERS)
    cores = _cores()
    if DEFAULT_FILES is None or cores < 2 or files_total < DEFAULT_FILES:
        return 0
    return min(cores, MAX_WORKERS)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: connection.Connection
    sent: collections.deque[int] = field(default_factory=collections.deque)  # blob bytes


class ProcessFeed:
    """The restoring process's end: runs to the least busy worker, answers applied to
    the restorer's counts, errors and progress as they come."""

    def __init__(self, restorer: _Restorer, count: int) -> None:
        self._r = restorer
        self._workers: list[_Worker] = []
        repo: Any = restorer.repo
        init: tuple[Any, ...] = ("init", os.getpid(), repo.backend.root, repo.writer_secret())
        init += (restorer.target, restorer.overwrite, restorer.create_mode, restorer.is_root)
        try:
            for _ in range(count):
                self._workers.append(_launch(init))
        except BaseException:
            self._kill()
            raise

    def __enter__(self) -> ProcessFeed:
        return self

    def put(self, files: list[tuple[bytes, Node]]) -> None:
        from snowvault.engine import restorer

        for run in restorer._runs(self._r.order(files)):
            self._send(run)

    def _send(self, run: list[tuple[bytes, Node]]) -> None:
        worker = min(self._workers, key=lambda w: len(w.sent))
        while len(worker.sent) >= WINDOW:
            self._collect()
            worker = min(self._workers, key=lambda w: len(w.sent))
        locate = self._r.repo.locate  # type: ignore[attr-defined]
        where: dict[bytes, tuple[str, int, int, int, int]] = {}
        nbytes = 0
        files: list[tuple[Any, ...]] = []
        for rel, node in run:
            files.append((rel, node.mode, node.uid, node.gid, node.mtime_ns, node.size))
            files.append((node.content, node.xattrs))
            for blob, length in node.content:
                if blob is not None:
                    nbytes += length
                    blob_id = bytes.fromhex(blob)
                    if blob_id not in where:
                        # not in the index: the worker's read says so for its file
                        with contextlib.suppress(errors.IntegrityError):
                            loc = locate(blob_id)
                            where[blob_id] = (loc.pack_id, loc.kind, loc.offset, loc.length, 0)
        worker.conn.send(("run", files, where, self._r.new_owner))
        worker.sent.append(nbytes)

    def _collect(self) -> None:
        """Wait for at least one answer and apply every answer that is there."""
        from snowvault.engine import restorer

        busy = {w.conn: w for w in self._workers if w.sent}
        for conn in connection.wait(list(busy)):
            worker = busy[conn]  # type: ignore[index]
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError) as exc:
                code = worker.process.poll()
                raise errors.EngineError(detail=f"a restore worker ended (exit {code})") from exc
            if msg[0] == "failed":
                raise errors.EngineError(detail=f"a restore worker failed: {msg[1]}")
            _, files, written, failed, last = msg
            r = self._r
            with r.lock:
                r.files += files
                r.bytes += written
            for path, detail in failed:
                r.errors.append(restorer.RestoreError(path, detail))
                r.meter.error(path)
            r.meter.advance(files=files, nbytes=worker.sent.popleft(), current=last)

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                while any(w.sent for w in self._workers):
                    self._collect()
                for w in self._workers:
                    w.conn.send(("stop",))
                for w in self._workers:
                    w.process.wait()
        finally:
            self._kill()
            if self._r.runs is not None:
                self._r.runs.close()

    def _kill(self) -> None:
        for w in self._workers:
            if w.process.poll() is None:
                w.process.kill()
                w.process.wait()
            w.conn.close()


def _launch(init: tuple[Any, ...]) -> _Worker:
    """One worker process (engine/worker_launch.py), ``init`` sent."""
    proc, conn = worker_launch.launch("restore_workers", init)
    return _Worker(proc, conn)


# ---------------------------------------------------------------- the worker


class _Blobs:
    """What a worker's :class:`restorer._Restorer` reads through: the locations sent
    with the run being written, the packs under the repository's directory."""

    def __init__(self, root: str, secret: bytes) -> None:
        from snowvault.engine.crypto import RepositoryKeys

        self.backend = LocalBackend(root)
        self._sealer = RepositoryKeys(secret).sealer()
        self.where: dict[bytes, Any] = {}

    def locate(self, blob_id: bytes) -> Any:
        from snowvault.engine import index

        loc = self.where.get(blob_id)
        if loc is None:
            raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not in the index")
        return index.Location(*loc)

    def decode_blob_view(
        self, blob_id: bytes, kind: int, sealed: bytes | memoryview, name: str
    ) -> bytes | memoryview:
        from snowvault.engine import repository

        return repository.open_blob_view(self._sealer, blob_id, kind, sealed, name)

    def get_blob(self, blob_id: bytes) -> bytes:
        raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not readable here")

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        raise errors.EngineError(detail="a restore worker reads no manifest")

    def blob_location(self, blob_id: bytes) -> tuple[str, int, int]:
        raise errors.EngineError(detail="a restore worker orders no files")


def _nodes(sent: list[Any]) -> list[tuple[bytes, Node]]:
    """A run's files as sent (plain tuples: a pickled Node cost 20 microseconds, more
    than writing a small file's metadata) back to nodes."""
    from snowvault.engine.tree import Node

    out = []
    for i in range(0, len(sent), 2):
        (rel, mode, uid, gid, mtime_ns, size), (content, xattrs) = sent[i], sent[i + 1]
        node = Node(rel, "file", mode, uid, gid, mtime_ns=mtime_ns, size=size)
        node.content, node.xattrs = content, xattrs
        out.append((rel, node))
    return out


def serve() -> None:
    """A worker's entry point (``python -c`` with the socket's descriptor as argument)."""
    worker_launch.serve(_worker_main)


def _worker_main(
    conn: connection.Connection,
    parent: int,
    root: str,
    secret: bytes,
    target: bytes,
    overwrite: bool,
    create_mode: int,
    is_root: bool,
) -> int:
    from snowvault.core.clock import SystemClock
    from snowvault.engine import file_workers, gc_tuning, malloc_tuning, restorer
    from snowvault.engine.progress import ProgressMeter

    file_workers._die_with(parent)
    malloc_tuning.fix_mmap_threshold()  # as the restoring process (restorer.restore)
    blobs = _Blobs(root, secret)
    r = restorer._Restorer(blobs, target, overwrite, ProgressMeter("restore", None, SystemClock()))
    r.is_root, r.create_mode = is_root, create_mode
    try:
        with gc_tuning.fewer_collections():
            while True:
                msg = conn.recv()
                if msg[0] == "stop":
                    return 0
                _, sent, blobs.where, r.new_owner = msg
                run = _nodes(sent)
                r.errors, r.files, r.bytes = [], 0, 0
                r._restore_run(run)
                failed = [(e.path, e.error) for e in r.errors]
                conn.send(("done", r.files, r.bytes, failed, run[-1][0]))
    except BaseException as exc:  # the restore fails with this text
        with contextlib.suppress(OSError, ValueError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return 1
    finally:
        if r.runs is not None:
            r.runs.close()
