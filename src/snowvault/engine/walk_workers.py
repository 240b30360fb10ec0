"""Subtrees of a backup walked in worker processes, so the walk itself runs on every core.

The single-process archiver spends most of a large backup in Python per entry (scandir,
lstat, xattrs, nodes, tree JSON) on one thread that shares its GIL with the threads
storing blobs, so it uses about one core. Here the parent walks only the top of the
source; each directory of a *frontier* (found by :func:`split_points`) is handed whole to
one of a few worker processes, which walks it with the same :class:`_Archiver` code,
stores its files and trees into packs of its own, and answers only the subtree's tree
id, its counters and its errors. While the parent waits for an answer it walks queued
subtrees itself, so one worker and the parent keep two cores busy. An initial backup's
subtrees are taken heaviest first (:func:`weigh`: a capped listing), so the last ones
walked are light and neither process walks a heavy one alone at the end, each process
keeping to siblings of what it walked last (they share blobs, which two writers would
each store).

    pool = SubtreeWorkers.start(repo, walkers=1, excludes=[], one_file_system=False)
    ref = pool.submit(path, rel, dev, parent_tree)    # ref.result(): the tree id
    totals = pool.close()                             # every worker's packs flushed

``walkers=N`` or ``SNOWVAULT_ENGINE_WALKERS=N`` starts N workers at once (0: none);
``SNOWVAULT_ENGINE_WALKERS=auto`` one per core but one, launched only once the backup
has queued ``LAUNCH_BYTES`` of files to read or listed ``LAUNCH_ENTRIES`` entries (until
then, and in a backup that never gets there, the walk is exactly the one-process
path's). Unset, an initial backup (no parent) starts them at once when a quick listing
finds ``PRESCAN_ENTRIES`` entries, else does as ``auto``; a rerun gets a lazy pool that
only ``LAUNCH_BYTES`` of changed files to read launch, never the entries listed, so a
no-change rerun stays in one process (the archiver asks for it so:
``archiver.RERUN_WALKERS``; measured in docs/benchmarks.md, "Issue 15, backup").

Format and ordering: a worker is an ordinary writer of the repository (its own
:class:`Repository` on the same store, under the backup's shared lock): each pack is
uploaded whole, then its index segment, as the single-process path writes them.
:meth:`SubtreeWorkers.close` returns only once every worker has flushed, and the parent
writes the manifest after that, so a recovery point never names a blob whose pack or
segment is not durable. A blob two writers of one backup both store is stored twice
(allowed by the format; ``prune`` keeps one). A SIGKILL of the backup kills its workers
(Linux's parent-death signal and a watchdog) and leaves packs without a manifest, as
an interrupted single-process backup does.

Hard links across subtrees: each worker reads the file again; the same bytes give the
same blob ids, so the nodes are those of the single-process path.

Who may ask / what it reaches: the workers are this process's own children (a fresh
interpreter, never forked from a possibly threaded server), talk to it over a private
socket pair, get the repository secret through it and open only the local directory
the repository already lives in. Only a repository on a :class:`LocalBackend` is walked this way (a
store the workers could reopen by path); any other store, a custom file system or
one core uses the single-process path, which stays the reference the tests compare
against. Progress from the workers reaches the caller's callback on the calling
thread only (:meth:`SubtreeRef.result` and :meth:`SubtreeWorkers.submit` relay it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from snowvault.core.clock import SystemClock
from snowvault.engine import (
    errors,
    file_workers,
    gc_tuning,
    malloc_tuning,
    snapshots,
    worker_launch,
)
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.excludes import Excludes
from snowvault.engine.progress import ProgressMeter

if TYPE_CHECKING:  # imported where used: a backup that starts no worker skips it
    from multiprocessing import connection

TASKS_PER_WORKER = 8
"""The frontier is deepened until it has this many directories per worker (or no
directory has subdirectories left), so the workers can even out unequal subtrees."""
MAX_SPLIT_DEPTH = 4
SPLIT_MAX_FILES = 16
WORKER_INFLIGHT = 4 * 1024 * 1024
"""Bytes of blobs a worker hands its blob threads before they are packed (memory): four
~1 MiB chunks still keep its two blob threads busy. At 8 MiB (the backup's own process's
figure) the media set's initial backup peaked at 133-146 MiB summed over both processes,
at 4 MiB 128-129 (four runs each, alternated, load 11-13; wall and CPU seconds within
the runs' spread), restic 123-138."""
RELAY_SECONDS = 0.2
TAKE_BACK = True
"""Whether this process walks queued subtrees itself while it waits (tests turn it off
to have the workers walk every one)."""
DEFAULT_ON = True
"""Whether a backup walks in workers when neither the caller nor the environment says:
on a local store with two or more cores, and lazily (see :meth:`SubtreeWorkers.ready`),
so a small tree never starts one. :meth:`SubtreeWorkers.start` with ``rerun=True`` still
answers None unless asked: the archiver gives a rerun its lazy pool itself, launched by
bytes to read only (``archiver.RERUN_WALKERS``), since a rerun mostly lists and reads
little."""
LAUNCH_BYTES = 256 * 1024 * 1024
"""Bytes of files this process queues to read (counted when queued, so a large file
launches the workers before it is read) before a lazily started pool launches them."""
LAUNCH_ENTRIES = 20_000
"""Or entries this process has listed: a tree of many small files launches them early
(the benchmark's quick set, 13,000 entries and 190 MiB, stays in one process)."""
PRESCAN_ENTRIES = LAUNCH_ENTRIES
"""By default (not ``auto``) a backup first lists its tree breadth-first up to this many
entries; a tree that has them gets its workers at once, not after its first 20,000."""


def cores() -> int:
    """Cores this process may run on (taskset and cgroups' cpusets count; cpu_count not)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def walkers_wanted(walkers: int | None) -> int:
    """``walkers`` itself, or for None ``SNOWVAULT_ENGINE_WALKERS`` when it is a number;
    when it is ``auto`` (or unset and ``DEFAULT_ON``), one worker per core but one (this
    process walks too) when there are two or more (one core: none, the walk would only
    pay for the processes), started lazily."""
    if walkers is not None:
        return max(0, walkers)
    env = os.environ.get("SNOWVAULT_ENGINE_WALKERS", "")
    if env.isdigit():
        return int(env)
    n = cores()
    return n - 1 if (DEFAULT_ON or env == "auto") and n >= 2 else 0


# --------------------------------------------------------------------------- the frontier


def large_tree(roots: Sequence[bytes], limit: int) -> bool:
    """Whether a breadth-first listing of ``roots`` (scandir only: no stat, no read)
    finds ``limit`` entries or more; it stops there, so it costs at most ``limit``
    directory entries (about 10 ms for 20,000), and the walk finds them cached."""
    seen = 0
    queue = deque(roots)
    while queue:
        try:
            with os.scandir(queue.popleft()) as it:
                for entry in it:
                    seen += 1
                    if seen >= limit:
                        return True
                    if entry.is_dir(follow_symlinks=False):
                        queue.append(entry.path)
        except OSError:
            continue  # not a directory, or unreadable: the walk reports it
    return False


def split_points(roots: Sequence[bytes], excludes: Excludes, want: int) -> set[bytes]:
    """Directories to hand to workers: the subdirectories of ``roots``, deepened level by
    level until there are ``want`` of them or ``MAX_SPLIT_DEPTH`` levels. A directory is
    split into its subdirectories only when it holds at most ``SPLIT_MAX_FILES`` other
    entries (those the parent then walks itself); one without subdirectories or with
    more files stays whole. Only scandir; an unreadable directory is not split (the
    walk reports it)."""
    single = len(roots) == 1
    level: list[tuple[bytes, bytes]] = []
    for root in roots:
        rel = b"" if single else os.path.basename(root.rstrip(b"/")) or b"root"
        if single:
            level.extend(_subdirs(root, rel, excludes, force=True) or [])
        elif os.path.isdir(root) and not os.path.islink(root):
            level.append((root, rel))
    for _ in range(MAX_SPLIT_DEPTH - 1):
        if len(level) >= want:
            break
        deeper: list[tuple[bytes, bytes]] = []
        split = False
        for path, rel in level:
            subs = _subdirs(path, rel, excludes)
            split = split or subs is not None
            deeper.extend(subs or [(path, rel)])
        if not split:
            break
        level = deeper
    return {path for path, _ in level}


WEIGH_ENTRIES = 2048
"""Entries :func:`weigh` lists in one subtree before it counts the directories it has
not listed as the average of those it has (listing costs ~0.65 us an entry: the full
set's 134,000 entries 0.19 CPU s, its 30 subtrees capped so ~40 ms; the Django trees
still weigh more than its small-file directories, as they cost)."""
WEIGH_STATS = 64
"""Files :func:`weigh` stats at most in one subtree; the others count as their average."""
ENTRY_COST = 16 * 1024
"""What one entry costs the walk, in bytes of file data that cost as much: the full set's
100,000 small files took ~45 us each, its 1 GiB image ~2.5 ms a MiB (~2.4 ns a byte)."""
AFFINITY = 2
"""A process keeps to sibling subtrees while they weigh at least 1/AFFINITY of the
heaviest queued (:meth:`SubtreeWorkers._heaviest`)."""
HOLE_SHARE = 4
"""A sparse file's hole costs a quarter of data: its zeros are read and cut, not stored
(the media set's 512 MiB image with 64 MiB of data: 0.375 s alone, an album of 91 MiB
of photos 0.2 s)."""


def weigh(path: bytes) -> int:
    """What walking the subtree at ``path`` will cost, roughly, in bytes of data: its
    files' allocated bytes (a hole's at ``1/HOLE_SHARE``) and ``ENTRY_COST`` an entry,
    from a breadth-first listing of at most ``WEIGH_ENTRIES`` entries with at most
    ``WEIGH_STATS`` files stat'ed (the others count as their average). A directory
    whose link count says it has no subdirectories is only counted (os.listdir: a
    DirEntry per entry cost ~1 us, 0.15 CPU s over the full set's 134,000). Orders the
    workers' tasks heaviest first (:meth:`SubtreeWorkers._dispatch`); never fails."""
    entries = files = sampled = data = listed = 0
    queue = deque([path])
    while queue and entries < WEIGH_ENTRIES:
        top = queue.popleft()
        listed += 1
        try:
            if os.stat(top).st_nlink == 2:  # no subdirectories (btrfs says 1: scandir)
                names = os.listdir(top)
                entries += len(names)
                files += len(names)
                for name in names[: max(0, min(8, WEIGH_STATS - sampled))]:
                    with contextlib.suppress(OSError):
                        data += _weight(os.lstat(top + b"/" + name))
                        sampled += 1
                continue
            with os.scandir(top) as it:
                for entry in it:
                    entries += 1
                    if entry.is_dir(follow_symlinks=False):
                        queue.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        files += 1
                        if sampled < WEIGH_STATS:
                            with contextlib.suppress(OSError):
                                data += _weight(entry.stat(follow_symlinks=False))
                                sampled += 1
                    if entries >= WEIGH_ENTRIES:
                        break
        except OSError:
            continue  # the walk reports it
    if sampled:
        data = data * files // sampled
    cost = data + entries * ENTRY_COST
    return cost * (listed + len(queue)) // listed if listed else cost


def _weight(st: os.stat_result) -> int:
    if not stat.S_ISREG(st.st_mode):
        return 0
    used = min(st.st_size, st.st_blocks * 512)
    return used + (st.st_size - used) // HOLE_SHARE


def _subdirs(
    path: bytes, rel: bytes, excludes: Excludes, *, force: bool = False
) -> list[tuple[bytes, bytes]] | None:
    """A directory's subdirectories (not excluded), or None when it is not to be split
    (``force``: whatever else it holds)."""
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return None
    dirs = [e for e in entries if e.is_dir(follow_symlinks=False)]
    if len(entries) - len(dirs) > SPLIT_MAX_FILES and not force:
        return None
    out = []
    for entry in dirs:
        child_rel = rel + b"/" + entry.name if rel else entry.name
        if not (excludes and excludes.excluded(child_rel, is_dir=True)):
            out.append((entry.path, child_rel))
    return out or None


# --------------------------------------------------------------------------- worker side


class _RecordingBackend(LocalBackend):
    """The worker's store: remembers the names of the index segments it writes (the
    parent reads them and adds their entries to its own master index). Its packs are
    filled in temporary files (:mod:`.pack_spool`) as a plain local store's are: only
    ``index/`` puts are recorded."""

    SPOOL_PACKS = True

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.segments: list[str] = []

    def put(self, name: str, data: bytes | bytearray) -> None:
        if name.startswith("index/"):
            self.segments.append(name)
        super().put(name, data)


class _Relay(ProgressMeter):
    """A worker's meter: sends what it counted to the parent at most every 0.2 s."""

    def __init__(self, send: Any) -> None:
        super().__init__("backup", None, SystemClock())
        self._send = send
        self._files = self._bytes = 0
        self._sent_at = 0.0

    def advance(
        self, *, files: int = 0, nbytes: int = 0, current: str | bytes | None = None
    ) -> None:
        self._files += files
        self._bytes += nbytes
        if current is not None:
            self.current = current
        if self.elapsed() - self._sent_at >= RELAY_SECONDS:
            self.flush()

    def error(self, current: str | bytes) -> None:
        self.flush()
        self._send(("error", current))

    def flush(self) -> None:
        if self._files or self._bytes:
            self._send(("progress", self._files, self._bytes, self.current))
            self._files = self._bytes = 0
        self._sent_at = self.elapsed()


def serve() -> None:
    """A worker's entry point (``python -c`` with the pipe's descriptor as argument):
    a fresh interpreter that imports only the engine, never the caller's main module."""
    worker_launch.serve(_worker_main)


def _worker_main(
    conn: connection.Connection,
    parent: int,
    root: str,
    secret: bytes,
    cfg: Any,
    excludes: list[str],
    one_file_system: bool,
) -> int:
    """A worker: walk the subtrees it is sent until told to stop, then flush and answer
    with the names of the index segments it wrote. Its exit status."""
    file_workers._die_with(parent)
    malloc_tuning.fix_mmap_threshold()  # as the backup's own process (archiver.backup_paths)
    lock = threading.Lock()

    def send(msg: Any) -> None:
        with lock:
            conn.send(msg)

    task = [-1]  # the subtree being walked, for the failure's message
    try:
        with gc_tuning.fewer_collections():  # as backup_paths (measured: 0.3 CPU s here)
            return _serve_tasks(conn, send, task, root, secret, cfg, excludes, one_file_system)
    except BaseException as exc:  # the parent fails the backup with this text
        with contextlib.suppress(OSError, ValueError):
            send(("failed", task[0], f"{type(exc).__name__}: {exc}"))
        return 1


def _serve_tasks(
    conn: connection.Connection,
    send: Callable[[Any], None],
    task: list[int],
    root: str,
    secret: bytes,
    cfg: Any,
    excludes: list[str],
    one_file_system: bool,
) -> int:
    from snowvault.engine import archiver, repository  # not at import: a cycle
    from snowvault.engine.crypto import RepositoryKeys

    backend = _RecordingBackend(root)
    keys = RepositoryKeys(secret)
    repo = repository.Repository(backend, cfg, keys, workers=2, max_inflight_bytes=WORKER_INFLIGHT)
    rules = Excludes(excludes)
    fs = archiver.FileSystem()
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            repo.flush()
            # names only: the parent reads the segments (from the page cache); an entry
            # per blob sent as Python tuples cost both processes ~20 MiB at the end
            send(("flushed", backend.segments, repo.stats_stored_bytes))
            repo.close()
            return 0
        _, task[0], path, rel, dev, parent_tree = msg
        meter = _Relay(send)
        done = archiver.walk_subtree(
            repo, fs, rules, one_file_system, meter, path, rel, dev, parent_tree
        )
        meter.flush()
        send(("done", task[0], *done))


# --------------------------------------------------------------------------- parent side


class SubtreeRef:
    """Where a delegated subtree's tree id will be. ``result()`` waits for it on the
    calling thread, relaying the workers' progress to the meter meanwhile."""

    __slots__ = ("_pool", "_task")

    def __init__(self, task: int, pool: SubtreeWorkers) -> None:
        self._task = task
        self._pool = pool

    def result(self) -> bytes:
        return bytes.fromhex(self._pool.wait(self._task))


def _launch(init: tuple[Any, ...]) -> _Worker:
    """One worker process (engine/worker_launch.py), ``init`` sent."""
    proc, conn = worker_launch.launch("walk_workers", init)
    return _Worker(proc, conn)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: connection.Connection
    busy: int | None = None  # the task it is walking
    dead: bool = False
    stopped: bool = False  # told to flush and stop (no task comes after)
    flushed: Future[tuple[list[Any], int]] = field(default_factory=Future)


LocalWalk = Callable[[bytes, bytes, int, "str | None"], tuple[str, Any, list[Any]]]
"""Walks one subtree in this process: (tree id, counters, errors)."""


@dataclass
class Totals:
    """What the workers did, for the backup's summary."""

    counters: list[Any] = field(default_factory=list)
    errors: list[snapshots.ManifestError] = field(default_factory=list)
    stored_bytes: int = 0


class SubtreeWorkers:
    """The parent's end: hands subtrees to idle workers, collects their answers."""

    def __init__(
        self,
        repo: Any,
        walkers: int,
        excludes: list[str],
        one_file_system: bool,
        *,
        lazy: bool = False,
    ) -> None:
        self._repo = repo
        self._count = walkers
        self._meter: ProgressMeter | None = None
        self._lock = threading.Lock()
        self._queue: deque[int] = deque()  # tasks no worker has taken yet
        self._tasks: list[tuple[Any, ...]] = []  # (path, rel, dev, parent tree)
        self._costs: list[int] = []  # weigh(path) of each task
        self._groups: list[bytes] = []  # its parent directory
        self._claims: dict[int, bytes] = {}  # the group each process walked last
        self._local: LocalWalk | None = None
        self._futures: list[Future[str]] = []
        self._results: dict[int, tuple[Any, list[snapshots.ManifestError]]] = {}
        self._progress = [0, 0]
        self._current: str | bytes | None = None
        self._errors: list[str | bytes] = []  # paths, for the meter's count
        self._broken: str | None = None
        self._closing = False  # no task is submitted any more
        self._workers: list[_Worker] = []
        root, rules = repo.backend.root, list(excludes)
        secret = repo.writer_secret()
        self._init: tuple[Any, ...] = ("init", os.getpid(), root, secret, repo.config)
        self._init += (rules, one_file_system)
        self._pump: threading.Thread | None = None
        if not lazy:
            self._launch()

    def _launch(self) -> None:
        try:
            for _ in range(self._count):
                self._workers.append(_launch(self._init))
        except BaseException:
            self.abort()
            raise
        self._pump = threading.Thread(target=self._receive, name="sv-walk-pump", daemon=True)
        self._pump.start()

    def ready(self, to_read: int, entries: int = 0) -> bool:
        """Whether to hand subtrees to workers now: at once when asked for explicitly,
        else (started lazily) once this process has queued ``LAUNCH_BYTES`` of files to
        read or listed ``LAUNCH_ENTRIES`` entries -- a backup that reads little (a
        rerun, a small tree) never pays for a worker and walks exactly as the
        one-process path does."""
        if self._pump is None and (to_read >= LAUNCH_BYTES or entries >= LAUNCH_ENTRIES):
            self._launch()
        return self._pump is not None

    @classmethod
    def start(
        cls,
        repo: Any,
        walkers: int | None,
        excludes: Sequence[str],
        one_file_system: bool,
        *,
        rerun: bool = False,
        roots: Sequence[bytes] = (),
    ) -> SubtreeWorkers | None:
        """Workers for ``repo``, or None for the single-process path (see the module);
        ``rerun``: the backup has a parent (then only workers asked for, by the caller
        or the environment, ``auto`` included). By default the workers start at once
        when a quick listing of ``roots`` finds ``PRESCAN_ENTRIES`` entries, else
        lazily."""
        from snowvault.engine.repository import Repository  # workers import it lazily

        n = walkers_wanted(walkers)
        if n < 1 or not isinstance(repo, Repository):
            return None
        if type(repo.backend) is not LocalBackend or repo.pack_keys():
            return None  # reopened by path; keyed packs: the parent's index would shadow
        env = os.environ.get("SNOWVAULT_ENGINE_WALKERS", "")
        if rerun and walkers is None and not env:
            return None  # the default (DEFAULT_ON) walks only initial backups in workers
        asked = walkers is not None or env.isdigit()
        if not asked and not env and large_tree(roots, PRESCAN_ENTRIES):
            asked = True  # the default, for a tree seen to be large: at once
        return cls(repo, n, list(excludes), one_file_system, lazy=not asked)

    @property
    def count(self) -> int:
        return self._count

    def attach(self, meter: ProgressMeter, local: LocalWalk) -> None:
        """The backup's meter, and how this process walks a subtree itself (while it
        waits for a worker, it takes queued subtrees instead of idling)."""
        self._meter = meter
        self._local = local

    # ------------------------------------------------------------ tasks
    def submit(self, path: bytes, rel: bytes, dev: int, parent_tree: str | None) -> SubtreeRef:
        future: Future[str] = Future()
        # a rerun's subtree costs its changed files, which a listing does not see: all
        # weigh the same (0), taken in the walk's order, as before weighing
        cost = weigh(path) if parent_tree is None else 0
        with self._lock:
            if self._broken is not None:
                raise errors.EngineError(detail=self._broken)
            task = len(self._futures)
            self._futures.append(future)
            self._tasks.append((path, rel, dev, parent_tree))
            self._costs.append(cost)
            self._groups.append(os.path.dirname(path.rstrip(b"/")))
            self._queue.append(task)
            self._dispatch()
        self.relay()
        return SubtreeRef(task, self)

    def _heaviest(self, who: int, waiting: int | None = None) -> int:
        """The queued task for ``who`` (a worker's index, -1 for this process) to walk
        next, taken off the queue (lock held, queue not empty): the heaviest by
        :func:`weigh`, so the last subtrees walked are the lightest and no process walks
        one alone at the end (the media set's 512 MiB sparse image and 170 MiB of logs
        were queued last, and one process walked each while the other had finished).
        But a process keeps to the siblings (same parent directory) of what it walked
        last, else takes siblings no other process walks, while the heaviest of those
        weighs at least half the heaviest of all (``AFFINITY``): siblings share blobs
        (the full set's five Django versions), and two processes store a blob they
        both meet twice (taken alternately, they added 15 MB, +1.6%, to its 946 MB).
        Of equals a worker takes the oldest; this process (``waiting`` for that task)
        takes that one, else the newest. A rerun's tasks all weigh 0: the walk's order."""
        costs, groups, queue = self._costs, self._groups, self._queue
        if waiting is None:
            task = max(queue, key=lambda t: (costs[t], -t))
        else:
            task = max(queue, key=lambda t: (costs[t], t == waiting, t))
        if costs[task] > 0:
            mine = self._claims.get(who)
            others = {g for w, g in self._claims.items() if w != who}
            for pool in (
                [t for t in queue if groups[t] == mine],
                [t for t in queue if groups[t] not in others],
            ):
                if pool:
                    best = max(pool, key=lambda t: (costs[t], -t))
                    if costs[best] * AFFINITY >= costs[task]:
                        task = best
                        break
        self._claims[who] = groups[task]
        queue.remove(task)
        return task

    def _dispatch(self) -> None:
        """Give each idle worker the heaviest queued subtree (lock held); once closing
        with nothing queued, tell each idle worker to stop, so that it flushes its packs
        while this process or another worker still walks its last subtree."""
        for i, worker in enumerate(self._workers):
            if not self._queue:
                if self._closing:
                    self._stop_idle()
                return
            if worker.busy is None and not worker.dead and not worker.stopped:
                task = self._heaviest(i)
                worker.busy = task
                try:
                    worker.conn.send(("walk", task, *self._tasks[task]))
                except OSError:  # it died; the pump fails the rest
                    worker.dead = True
                    why = "a backup worker process ended unexpectedly"
                    self._broken = self._broken or why
                    with contextlib.suppress(InvalidStateError):
                        self._futures[task].set_exception(errors.EngineError(detail=why))

    def _stop_idle(self) -> None:
        """Send every idle worker not yet told its stop (lock held)."""
        for worker in self._workers:
            if worker.busy is None and not worker.dead and not worker.stopped:
                worker.stopped = True
                with contextlib.suppress(OSError):  # it died: the pump fails the backup
                    worker.conn.send(("stop",))

    def wait(self, task: int) -> str:
        """A subtree's tree id. Until a worker answers, this process walks queued
        subtrees itself, the heaviest first as the workers take them (of equals
        ``task`` if no worker took it yet, else the newest)."""
        future = self._futures[task]
        while not future.done():
            with self._lock:
                if self._local is None or not self._queue or not TAKE_BACK:
                    mine = None
                else:
                    mine = self._heaviest(-1, task)
            if mine is None:
                with contextlib.suppress(TimeoutError):
                    future.result(timeout=RELAY_SECONDS)
                self.relay()
                continue
            assert self._local is not None
            try:
                tree_id, counters, errs = self._local(*self._tasks[mine])
            except BaseException as exc:
                self._futures[mine].set_exception(exc)
                raise
            with self._lock:
                self._results[mine] = (counters, errs)
            self._futures[mine].set_result(tree_id)
        self.relay()
        return future.result()

    def relay(self) -> None:
        """Pass the workers' progress on to the meter (on the calling thread)."""
        with self._lock:
            files, nbytes = self._progress
            self._progress = [0, 0]
            current, self._current = self._current, None
            errs, self._errors = self._errors, []
        if self._meter is None:
            return
        if files or nbytes:
            self._meter.advance(files=files, nbytes=nbytes, current=current)
        for path in errs:
            self._meter.error(path)

    # ------------------------------------------------------------ answers
    def _receive(self) -> None:
        from multiprocessing import connection

        live: dict[Any, _Worker] = {w.conn: w for w in self._workers}
        while live:
            for ready in connection.wait(list(live)):
                worker = live[ready]
                try:
                    msg = worker.conn.recv()
                except (EOFError, OSError):
                    del live[ready]
                    self._lost(worker, "a backup worker process ended unexpectedly")
                    continue
                if self._take(worker, msg):
                    del live[ready]

    def _take(self, worker: _Worker, msg: tuple[Any, ...]) -> bool:
        """Handle one message; whether it was the worker's last."""
        kind = msg[0]
        if kind == "progress":
            with self._lock:
                self._progress[0] += msg[1]
                self._progress[1] += msg[2]
                self._current = msg[3]
            return False
        if kind == "error":
            with self._lock:
                self._errors.append(msg[1])
            return False
        if kind == "done":
            _, task, tree_id, counters, errs = msg
            with self._lock:
                self._results[task] = (counters, errs)
                worker.busy = None
                self._dispatch()
            self._futures[task].set_result(tree_id)
            return False
        if kind == "flushed":
            worker.flushed.set_result((msg[1], msg[2]))
            return True
        self._lost(worker, f"a backup worker failed: {msg[2]}")
        return True

    def _lost(self, worker: _Worker, why: str) -> None:
        with self._lock:
            worker.dead = True
            self._broken = self._broken or why
            pending = [self._futures[t] for t in self._queue]
            if worker.busy is not None:
                pending.append(self._futures[worker.busy])
            self._queue.clear()
        failed: list[Future[Any]] = [*pending, worker.flushed]
        for future in failed:
            with contextlib.suppress(InvalidStateError):  # answered or failed meanwhile
                future.set_exception(errors.EngineError(detail=why))

    # ------------------------------------------------------------ the end
    def close(self) -> Totals:
        """Wait for every subtree, have every worker flush its packs and index segments
        (durable before this returns), add their entries to the parent's index."""
        with self._lock:
            self._closing = True
            self._dispatch()
        for task in range(len(self._futures)):
            self.wait(task)
        with self._lock:
            self._stop_idle()
        self._repo.flush()  # this process's packs, while the workers flush theirs
        totals = Totals()
        for worker in self._workers:
            while True:
                try:
                    names, stored = worker.flushed.result(timeout=RELAY_SECONDS)
                    break
                except TimeoutError:
                    self.relay()
            for name in names:  # one segment's bytes at a time
                (body,) = self._repo.segment_bodies([name]).values()
                self._repo.master_index.add_body(body)
            totals.stored_bytes += stored
        for task in range(len(self._futures)):  # in the walk's order: deterministic
            counters, errs = self._results[task]
            totals.counters.append(counters)
            totals.errors.extend(errs)
        self.relay()
        self._join()
        return totals

    def _join(self) -> None:
        for worker in self._workers:
            worker.process.wait(timeout=30)
        if self._pump is not None:
            self._pump.join(timeout=5)

    def abort(self) -> None:
        """Stop the workers at once (a failed backup); what they wrote stays unnamed."""
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(timeout=10)
            with contextlib.suppress(OSError):
                worker.conn.close()
