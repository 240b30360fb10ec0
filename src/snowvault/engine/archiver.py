"""Backup of directory trees into a repository (byte streams: :mod:`.stream_backup`).

One thread walks the source depth-first (``os.scandir`` on bytes paths, so any name
round-trips), a directory's files before its subdirectories. A file to chunk (``min_size``
or more, not a hard link) is read and chunked on the walk's reader thread while the walk
goes on, so a large file met in a directory is read while its subdirectories are walked
(reads, FastCDC and BLAKE3 release the GIL; in an incremental backup of the benchmark's
full set, a changed 1 GiB image among 140,000 entries, the walking thread's CPU went
from 5.7 to 4.4 s, medians of six alternated runs). Every chunk goes to
``repo.add_blob_async``: hashing, compression and encryption run on the repository's
pool. A directory's tree blob is built only when its files' futures are due (a file on
the reader thread: when it is read), and stored on the walk's thread (a tree is small:
the hand-off cost more than the store); finished directories wait in a FIFO
(post-order, so children always finish before their parent) that is drained whenever
too many entries are pending, so memory stays flat however large the source is.

    result = backup_paths(repo, ["/srv/data"], now=clock.now())
    result.rp_id, result.manifest.summary.files_new

With a parent recovery point a file whose size, mtime, ctime and inode are unchanged
keeps its blob list without being read (and its xattrs without being listed), and a
directory whose entries all equal the parent's keeps its tree id without being encoded.
The parent's nodes stay JSON objects: an entry whose stat matches its parent node field
by field is taken as it is, and decoded into a :class:`Node` only if its directory
changed (a rerun of an unchanged tree decodes none); an unchanged regular file is
checked and counted inline in :meth:`_Archiver.walk_dir` and reported once per
directory, the per-entry cost that makes up a no-change backup. A changed directory's
unchanged files are written into its new tree as the parent's JSON objects when those
are canonical (:func:`encode_pending`: the same bytes, without the node round trip).
A changed file read on the reader thread takes its parent version's chunks it finds
unchanged by their ids, without cutting or storing them (:class:`.chunker.ParentCuts`:
the same chunks FastCDC makes).

Small files are read whole and uploaded in batches (:mod:`.small_files`). With
``walkers`` (or ``SNOWVAULT_ENGINE_WALKERS``) whole subtrees are walked by worker
processes that write packs of their own (:mod:`.walk_workers`); with ``processes`` (or
``SNOWVAULT_ENGINE_PROCESSES``) only file contents are read, chunked, hashed, compressed
and sealed in worker processes (:mod:`.file_workers`), whose results fill the same nodes.
Content workers are opt-in; walk workers start by default only in an initial backup of
a large tree on a local store (see :mod:`.walk_workers`). The single-process path stays
the reference both are tested against.
Everything that touches the file system goes through :class:`FileSystem`, the seam tests
use to inject read failures, count reads or fake mount points. Knows nothing of the
control plane; never prints (progress goes to a callback).
"""

from __future__ import annotations

import base64
import errno
import grp
import json
import os
import pwd
import socket
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from snowvault.core import errors as core_errors
from snowvault.core.clock import Clock, SystemClock
from snowvault.engine import (
    errors,
    file_workers,
    gc_tuning,
    malloc_tuning,
    restore_reads,
    small_files,
    snapshots,
    stream_backup,
    walk_workers,
)
from snowvault.engine.chunker import Chunker, ChunkerParams, Known, ParentCuts, all_zero
from snowvault.engine.excludes import Excludes
from snowvault.engine.progress import ProgressCallback, ProgressMeter
from snowvault.engine.tree import (
    TREE_VERSION,
    Node,
    encode_dicts,
    encode_tree,
    node_from_dict,
    node_to_dict,
)

MAX_PENDING_NODES = 5_000
"""Entries whose tree is not yet built; bounds memory independently of the source size.
Ten batches of small files ahead is enough for the batch threads to keep up; 20,000 cost
the benchmark's initial backup 15-20 MiB more peak RSS (191-196 vs 175-177 MiB) for no
speed."""

RERUN_WALKERS = True
"""Whether a rerun (a backup with a parent) for which neither the caller nor the
environment says gets walk workers (:mod:`.walk_workers`) as an initial backup does, but
launched only by bytes: once the walk has queued ``walk_workers.LAUNCH_BYTES`` of
changed files to read, never by entries listed, so a rerun that reads little (a
no-change one above all) stays in one process. Measured on the benchmark's full-set incremental
(a changed 1 GiB image, 140,000 entries, three alternated runs each, load 8-10): the
walking thread's CPU 4.0-4.5 s in one process, 1.8-2.4 s with the worker (which used
1.9-2.7 s); no-change reruns launched none."""
READ_ON_THREAD = True
"""Whether chunked files are read on the reader thread (tests turn it off to compare the
trees with an inline read's)."""
PARENT_SHARE = 0.5
"""The cost of reading a changed file whose parent's chunks it may take, against one
cut whole (:meth:`_Archiver._read_cost`). Measured on the media set's 512 MiB sparse
image reread: the read with FastCDC 0.43 CPU s, BLAKE3 alone 0.11, the read ~0.1, so
about 0.4. A rerun of the media set (grown logs, a few changed blocks of the image,
45 MiB of new files) counted 730 MiB by ``st_size`` and launched a walk worker that cost
0.2-0.4 of its 1.3-1.8 CPU s for no wall time; it counts ~160 MiB now. The full set's
rerun still launches one at its changed 1 GiB image (512 MiB counted), as before."""
HELD_BUFFERS = 1
"""Earlier files whose chunks may still be stored from their read buffers while the
next file is read (:meth:`_Archiver._release_held`)."""
RERUN_READERS = 2
"""Reader threads of a rerun's own process (an initial backup and a walk worker keep
one). A rerun reads only changed files, most of whose chunks it takes from their parent
(:class:`ParentCuts`: read and hashed, not cut or stored), so its blob threads idle
while one reader goes through the files one by one: the media incremental's walk was
done at 0.2 s and its one reader read until 1.1 s of a 1.3 s run. Two cost its
largest process ~15 MiB more (a second file's buffer)."""
RELAY_SECONDS = 0.2
"""How often the walk's thread reports the reader thread's progress while it waits."""

_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.EPERM, errno.EACCES}


class BlobStore(Protocol):
    """The part of :class:`snowvault.engine.repository.Repository` the archiver uses."""

    @property
    def chunker_params(self) -> ChunkerParams: ...
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...
    def add_blob_async(self, kind: Any, data: bytes | memoryview) -> Future[bytes]: ...
    def get_blob(self, blob_id: bytes) -> bytes: ...
    def save_manifest(self, manifest: dict[str, Any]) -> str: ...
    def load_manifest(self, rp_id: str) -> dict[str, Any]: ...


Xattrs = tuple[tuple[bytes, bytes], ...]


def _lstat_at(name: bytes, dir_fd: int) -> os.stat_result | OSError:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        return exc


def _stat_of(
    stat_entry: Callable[[os.DirEntry[bytes]], os.stat_result], entry: os.DirEntry[bytes]
) -> os.stat_result | OSError:
    try:
        return stat_entry(entry)
    except OSError as exc:
        return exc


class FileSystem:
    """The archiver's only access to the source; subclass in tests to inject faults."""

    def scandir(self, path: bytes) -> list[os.DirEntry[bytes]]:
        with os.scandir(path) as it:
            return list(it)

    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(path)

    def listing(self, path: bytes) -> list[tuple[bytes, os.stat_result | OSError]]:
        """A directory's entries: each name with its lstat, or the error the stat gave
        (the listing's own error is raised). Here the directory is opened once and each
        entry is stat'ed by its name in it (``fstatat``: one name looked up, not the
        whole path again); a subclass that overrides :meth:`scandir` or
        :meth:`entry_stat` gets them called, so faults injected there still happen."""
        cls = type(self)
        if cls.scandir is not FileSystem.scandir or cls.entry_stat is not FileSystem.entry_stat:
            return [(entry.name, _stat_of(self.entry_stat, entry)) for entry in self.scandir(path)]
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return [(name, _lstat_at(name, fd)) for name in os.listdir(path)]
        finally:
            os.close(fd)

    def entry_stat(self, entry: os.DirEntry[bytes]) -> os.stat_result:
        return entry.stat(follow_symlinks=False)

    def device(self, path: bytes, st: os.stat_result) -> int:
        """The device a path lives on (for --one-file-system)."""
        return st.st_dev

    def read_small(self, path: bytes, size: int) -> bytes:
        """At most ``size`` bytes of a file (the size seen by stat), read whole."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = os.read(fd, size)
            while len(data) < size and (more := os.read(fd, size - len(data))):
                data += more
            return data
        finally:
            os.close(fd)

    def read_small_xattrs(
        self, path: bytes, size: int, dir_fd: int | None = None
    ) -> tuple[bytes, Xattrs]:
        """:meth:`read_small` and :meth:`xattrs` of one file. Here both go through the one
        descriptor the read opens (``flistxattr``: no second walk of the path, one call
        fewer on the walk's thread), opened by its name in ``dir_fd`` when that is its
        directory's descriptor (a batch's files share a few directories: one lookup of
        the name, not of the whole path); a subclass that overrides either method gets
        both called with the path, so faults injected there still happen."""
        cls = type(self)
        if cls.read_small is not FileSystem.read_small or cls.xattrs is not FileSystem.xattrs:
            return self.read_small(path, size), self.xattrs(path)
        if dir_fd is None:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        else:
            name = path[path.rfind(b"/") + 1 :]  # os.path.basename, without its calls
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        try:
            data = os.read(fd, size)
            while len(data) < size and (more := os.read(fd, size - len(data))):
                data += more
            return data, _xattrs(fd)
        finally:
            os.close(fd)

    def chunks(
        self, path: bytes, chunker: Chunker
    ) -> Iterator[bytes] | Iterator[memoryview] | Iterator[memoryview | Known | None]:
        """A file's chunks; a None means the views given so far are about to be reused
        (:meth:`Chunker.views_of_file`: no chunk is copied out of the read buffer), a
        :class:`Known` a chunk of the file's parent version found unchanged."""
        return chunker.views_of_file(path)

    def readlink(self, path: bytes) -> bytes:
        return os.readlink(path)

    def xattrs(self, path: bytes) -> Xattrs:
        return _xattrs(path)


def _xattrs(where: bytes | int) -> Xattrs:
    """The extended attributes of a path (not following a symbolic link) or an open
    descriptor, sorted by name."""
    follow = isinstance(where, int)  # a descriptor takes only the default (True)
    try:
        names = os.listxattr(where, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return ()
        raise
    if not names:
        return ()
    out = []
    for name in names:
        try:
            value = os.getxattr(where, name, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno in _NO_XATTR:
                continue
            raise
        out.append((os.fsencode(name), value))
    out.sort()
    return tuple(out)


# ---------------------------------------------------------------- pending work

Part = tuple["Future[bytes] | small_files.BatchRef | str | None", int]


Raw = dict[str, Any]
"""A parent tree's node as its JSON object: decoded into a :class:`Node` only when its
directory changed (most entries of a rerun are compared as they are, see ``_as_before``)."""


@dataclass(eq=False)
class _PendingDir:
    nodes: list[_PendingNode]
    parent_count: int = -1  # entries of the same directory in the parent
    parent_id: str | None = None
    tree_id: Future[bytes] | walk_workers.SubtreeRef | str | None = None


@dataclass(eq=False, slots=True)
class _PendingNode:
    node: Node | None  # None: exactly ``raw`` (the parent's), its subtree still to come
    parts: list[Part] | None = None
    child: _PendingDir | None = None
    slot: file_workers.Slot | None = None  # contents being read by a worker process
    small: tuple[small_files.FileRef, bytes, bytes, bool] | None = None  # (ref, path, rel, new)
    large: tuple[Future[list[Part]], bytes, bytes, bool] | None = None  # (parts, path, rel, new)
    dropped: bool = False  # the worker could not read it: left out, as an error
    raw: Raw | None = None


def _hex(ref: Future[bytes] | small_files.BatchRef | walk_workers.SubtreeRef | str) -> str:
    return ref if isinstance(ref, str) else ref.result().hex()


def _resolve(pn: _PendingNode) -> Node:
    node = pn.node
    if node is None:
        assert pn.raw is not None
        try:
            node = node_from_dict(pn.raw)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise errors.IntegrityError(name="parent tree", detail=f"bad node: {exc}") from exc
    if pn.child is not None:
        assert pn.child.tree_id is not None
        node.subtree = _hex(pn.child.tree_id)
    elif pn.parts is not None:
        node.content = tuple((None if ref is None else _hex(ref), n) for ref, n in pn.parts)
    return node


@dataclass
class _Counters:
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    dirs: int = 0
    other: int = 0
    bytes_read: int = 0
    total_size: int = 0


_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFSOCK: "socket",
}


class _Archiver:
    def __init__(
        self,
        repo: BlobStore,
        fs: FileSystem,
        excludes: Excludes,
        one_file_system: bool,
        meter: ProgressMeter,
        workers: file_workers.ContentWorkers | None = None,
        subtrees: walk_workers.SubtreeWorkers | None = None,
    ) -> None:
        self.repo = repo
        self.fs = fs
        self.excludes = excludes
        self.one_file_system = one_file_system
        self.meter = meter
        self.chunker = Chunker(repo.chunker_params)
        self.small = repo.chunker_params.min_size
        self.errors: list[snapshots.ManifestError] = []
        self.counters = _Counters()
        self._queue: deque[_PendingDir] = deque()
        self._pending = 0
        self._links: dict[tuple[int, int], list[Part]] = {}
        self._users: dict[int, str | None] = {}
        self._groups: dict[int, str | None] = {}
        self._owners: dict[tuple[int, int], tuple[str | None, str | None]] = {}
        self.batcher = small_files.SmallFiles(repo)
        self.workers = workers
        if workers is not None:
            workers.on_done = self._harvested
        self.subtrees = subtrees
        self.stored_elsewhere = 0  # bytes the walk workers stored
        self.to_read = 0  # what the files queued to be read will cost (_read_cost)
        self.listed = 0  # directory entries this process listed (a lazy pool's trigger)
        self.delegated: set[bytes] = set()  # directories walked by a worker process
        self.launch_by_entries = True  # False: only bytes queued to read start the pool
        self.readers = 1  # threads reading chunked files at once (RERUN_READERS)
        self._reader: ThreadPoolExecutor | None = None  # reads chunked files (_read_large)
        self._read_bytes = 0  # bytes the reader threads have chunked
        self._read_lock = threading.Lock()  # for _read_bytes, written by every reader
        self._reported = 0  # of those, how many the meter has seen (the walk's thread)
        self._stopping = False
        self._trees = _ParentTrees(repo)
        self._held: deque[list[Future[bytes]]] = deque()  # blobs still reading a done file's buffer
        # a changed file's unchanged chunks are found by their ids (ParentCuts); not for
        # a store that cannot name blobs as the repository does (an agent's)
        self._blob_id: Callable[[memoryview], bytes] | None = getattr(repo, "blob_id", None)
        self._has_blob: Callable[[bytes], bool] | None = getattr(repo, "has_blob", None)

    # ------------------------------------------------------------ pending queue
    def enqueue(self, pd: _PendingDir) -> None:
        self._queue.append(pd)
        self._pending += len(pd.nodes) + 1
        while self._pending > MAX_PENDING_NODES and self._queue:
            self._finish(self._queue.popleft())

    def _finish(self, pd: _PendingDir) -> None:
        self._pending -= len(pd.nodes) + 1
        if self.workers is not None:
            self.workers.wait([pn.slot for pn in pd.nodes if pn.slot is not None])
        self._small_reads(pd.nodes)
        for pn in pd.nodes:
            if pn.large is not None:
                self._large_read(pn, *pn.large)
        if pd.parent_id is not None and _as_before(pd):
            pd.tree_id = pd.parent_id  # no encoding, no hashing: the usual case of a rerun
        else:
            # stored on this thread, not handed to a blob thread: a tree is small, and the
            # hand-off (a future, a queue put waking a blob thread, the GIL passed back
            # and forth) cost more than the store. Full set's initial backup: 79,000 ->
            # 29,000 context switches, CPU 8.70 -> 8.33 s (medians of four, alternated)
            tree = encode_pending(pd.nodes, pd.parent_count > 0)  # else none is the parent's
            pd.tree_id = self.repo.add_blob("tree", tree).hex()
        pd.nodes = []

    def drain(self) -> None:
        """Finish every pending directory (the walk is done). The open batch of small
        files is sent first, so its files are read while the oldest directories wait for
        their large files: it was sent only when a directory asked for one of its files,
        after every directory before it (a media rerun's 40 changed documents waited
        for its 512 MiB disk image, then took ~30 ms at the end of the run)."""
        self.batcher.flush()
        while self._queue:
            self._finish(self._queue.popleft())

    def close(self) -> None:
        """Stop the threads of this walk (after :meth:`drain`, or on a failure: the
        reader thread gives up its file at its next chunk)."""
        self._stopping = True
        self._trees.close()
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None
        self.batcher.close()

    def _delegate(self, path: bytes) -> bool:
        """Whether a worker process walks this directory (:mod:`.walk_workers`)."""
        return (
            self.subtrees is not None
            and path in self.delegated
            and self.subtrees.ready(self.to_read, self._entries())
        )

    def _entries(self) -> int:
        """Entries listed, as far as a lazily started pool should count them."""
        return self.listed if self.launch_by_entries else 0

    def walk_subtree(
        self, path: bytes, rel: bytes, dev: int, parent_tree: str | None
    ) -> tuple[str, _Counters, list[snapshots.ManifestError]]:
        """A delegated subtree walked in this process after all (:mod:`.walk_workers`)."""
        return walk_subtree(
            self.repo, self.fs, self.excludes, self.one_file_system, self.meter,
            path, rel, dev, parent_tree,
        )  # fmt: skip

    # ------------------------------------------------------------ errors
    def error(self, path: bytes, exc: BaseException) -> None:
        text = path.decode("utf-8", "backslashreplace")
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.errors.append(snapshots.ManifestError(text, detail or type(exc).__name__))
        self.meter.error(path)

    # ------------------------------------------------------------ parent trees
    def load_parent(self, tree_id: str | None) -> dict[bytes, Raw] | None:
        """The parent's nodes of a directory by raw name, as JSON objects (decoded into
        nodes only where the directory changed)."""
        if tree_id is None:
            return None
        try:
            return raw_tree(self._trees.get(bytes.fromhex(tree_id)))
        except (errors.EngineError, ValueError, KeyError, TypeError, AttributeError):
            return None  # a damaged parent only costs a full read (binascii: ValueError)

    # ------------------------------------------------------------ walking
    def walk_dir(self, path: bytes, rel: bytes, dev: int, parent_tree: str | None) -> _PendingDir:
        prev_nodes = self.load_parent(parent_tree)
        try:
            entries = self.fs.listing(path)
        except OSError as exc:
            self.error(path, exc)
            entries = []
            prev_nodes = None
        prev = prev_nodes or {}
        pnodes: list[_PendingNode] = []
        self.listed += len(entries)
        prefix = path if path.endswith(b"/") else path + b"/"  # as os.scandir joins
        # A rerun's usual entry, a file exactly as in the parent, is taken here without
        # the general path's calls (entry, _as_before, one progress report per file):
        # counted, and reported once for the directory (measured: the walk of a
        # no-change rerun of the quick set, 13,700 entries, 0.41 -> 0.28 CPU s).
        same = 0
        same_bytes = 0
        last = b""
        quick = bool(prev) and not self.excludes
        subdirs: list[tuple[bytes, os.stat_result, Raw | None]] = []
        for name, st in entries:
            if isinstance(st, OSError):
                self.error(prefix + name, st)
                continue
            raw = prev.get(name)
            if quick and raw is not None and self._same_file(raw, st):
                pnodes.append(_PendingNode(None, raw=raw))
                same += 1
                same_bytes += st.st_size
                last = name
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((name, st, raw))  # after the files: see the docstring
                continue
            child_rel = rel + b"/" + name if rel else name
            pn = self.entry(prefix + name, name, child_rel, st, dev, raw)
            if pn is not None:
                pnodes.append(pn)
        if same:
            c = self.counters
            c.files_unchanged += same
            c.total_size += same_bytes
            current = rel + b"/" + last if rel else last
            self.meter.advance(files=same, nbytes=same_bytes, current=current)
        for name, st, raw in subdirs:
            child_rel = rel + b"/" + name if rel else name
            pn = self.entry(prefix + name, name, child_rel, st, dev, raw)
            if pn is not None:
                pnodes.append(pn)
        if self._reader is not None:
            self._relay_reads()
        pd = _PendingDir(pnodes, len(prev), parent_tree if prev_nodes is not None else None)
        self.enqueue(pd)
        return pd

    def entry(
        self,
        path: bytes,
        name: bytes,
        rel: bytes,
        st: os.stat_result,
        dev: int,
        raw: Raw | None,
    ) -> _PendingNode | None:
        kind = _TYPES.get(stat.S_IFMT(st.st_mode), "file")
        if self.excludes and self.excludes.excluded(rel, is_dir=kind == "dir"):
            return None
        prev = None
        if raw is not None:
            if self._unchanged_raw(raw, kind, st) and (
                kind != "dir" or not self.one_file_system or self.fs.device(path, st) == dev
            ):
                return self._as_before(path, rel, st, dev, kind, raw)
            try:
                prev = node_from_dict(raw)
            except (ValueError, KeyError, TypeError, AttributeError):
                prev = None  # a damaged parent node only costs a full read
        # a small file read on a batch thread takes its xattrs through the descriptor the
        # read opens (FileSystem.read_small_xattrs), not by a second walk of its path here
        # inode and ctime unchanged: the parent's xattrs and symlink target still hold
        # (setting an xattr changes ctime and a new target is a new inode)
        kept = (
            prev
            if prev is not None
            and prev.ctime_ns == st.st_ctime_ns
            and prev.inode == st.st_ino
            and prev.type == kind
            else None
        )
        later = (
            kept is None
            and kind == "file"
            and 0 < st.st_size < self.small
            and st.st_nlink <= 1
            and self.workers is None
        )
        try:
            node = self.make_node(path, name, kind, st, kept, xattrs=not later)
            if kind == "file":
                return self.file(path, rel, node, st, prev, xattrs_later=later)
        except OSError as exc:
            self.error(path, exc)
            return None
        if kind == "dir":
            self.counters.dirs += 1
            if self.one_file_system and self.fs.device(path, st) != dev:
                empty = _PendingDir([])
                self.enqueue(empty)
                return _PendingNode(node, child=empty)
            prev_tree = prev.subtree if prev is not None and prev.type == "dir" else None
            if self.subtrees is not None and self._delegate(path):
                ref = self.subtrees.submit(path, rel, dev, prev_tree)
                return _PendingNode(node, child=_PendingDir([], tree_id=ref))
            return _PendingNode(node, child=self.walk_dir(path, rel, dev, prev_tree))
        self.counters.other += 1
        self.meter.advance(files=1, current=rel)
        return _PendingNode(node)

    def _unchanged_raw(self, raw: Raw, kind: str, st: os.stat_result) -> bool:
        """Whether :meth:`make_node` would give exactly the parent's node (and, for a file,
        :meth:`file` its content): every field it takes from ``st`` is as before (xattrs
        and a symlink's target are then taken from the parent anyway), and the parent's
        node has no ``extra``."""
        get = raw.get
        return (
            get("type") == kind
            and get("ctime_ns", 0) == st.st_ctime_ns
            and get("mtime_ns", 0) == st.st_mtime_ns
            and get("inode", 0) == st.st_ino
            and get("size", 0) == (st.st_size if kind == "file" else 0)
            and get("mode", 0) == stat.S_IMODE(st.st_mode)
            and get("uid", 0) == st.st_uid
            and get("gid", 0) == st.st_gid
            and get("device", 0) == st.st_dev
            and get("nlink", 1) == (st.st_nlink if kind != "dir" else 1)
            and get("rdev", 0) == (st.st_rdev if kind in ("chardev", "blockdev") else 0)
            and get("user") == self.user(st.st_uid)
            and get("group") == self.group(st.st_gid)
            and "extra" not in raw
        )

    def _same_file(self, raw: Raw, st: os.stat_result) -> bool:
        """:meth:`_unchanged_raw` for a regular file, in fewer steps (the per-entry cost
        of a rerun): the parent's node is a file with every field as ``st`` says."""
        if not stat.S_ISREG(st.st_mode):
            return False
        get = raw.get
        uid, gid = st.st_uid, st.st_gid
        owner = self._owners.get((uid, gid))
        if owner is None:
            owner = self._owners[(uid, gid)] = (self.user(uid), self.group(gid))
        return (
            get("type") == "file"
            and get("ctime_ns", 0) == st.st_ctime_ns
            and get("mtime_ns", 0) == st.st_mtime_ns
            and get("inode", 0) == st.st_ino
            and get("size", 0) == st.st_size
            and get("mode", 0) == st.st_mode & 0o7777
            and get("uid", 0) == uid
            and get("gid", 0) == gid
            and get("device", 0) == st.st_dev
            and get("nlink", 1) == st.st_nlink
            and get("rdev", 0) == 0
            and (get("user"), get("group")) == owner
            and "extra" not in raw
        )

    def _as_before(
        self, path: bytes, rel: bytes, st: os.stat_result, dev: int, kind: str, raw: Raw
    ) -> _PendingNode:
        """An entry equal to the parent's (see :meth:`_unchanged_raw`): what :meth:`entry`
        and :meth:`file` count and walk, without building its node."""
        pn = _PendingNode(None, raw=raw)
        if kind == "file":
            c = self.counters
            c.total_size += st.st_size
            c.files_unchanged += 1
            self.meter.advance(files=1, nbytes=st.st_size, current=rel)
        elif kind == "dir":
            self.counters.dirs += 1
            subtree = raw.get("subtree")
            if self.subtrees is not None and self._delegate(path):
                ref = self.subtrees.submit(path, rel, dev, subtree)
                pn.child = _PendingDir([], tree_id=ref)
            else:
                pn.child = self.walk_dir(path, rel, dev, subtree)
        else:
            self.counters.other += 1
            self.meter.advance(files=1, current=rel)
        return pn

    def make_node(
        self,
        path: bytes,
        name: bytes,
        kind: str,
        st: os.stat_result,
        kept: Node | None = None,
        *,
        xattrs: bool = True,
    ) -> Node:
        """The entry's node. Its xattrs and symlink target are taken from ``kept``, the
        same name's node in the parent when its inode and ctime are unchanged (the caller,
        :meth:`entry`, checks): that saves two system calls per unchanged entry without
        missing a change. ``xattrs=False``: none listed here (a small file's come with
        its read, :meth:`_small_reads`)."""
        if kept is not None:
            found, target = kept.xattrs, kept.target
        else:
            found = self.fs.xattrs(path) if xattrs else ()
            target = self.fs.readlink(path) if kind == "symlink" else None
        uid, gid = st.st_uid, st.st_gid
        owner = self._owners.get((uid, gid))
        if owner is None:
            owner = self._owners[(uid, gid)] = (self.user(uid), self.group(gid))
        # by position, in Node's order (keywords cost measurably: once per entry)
        return Node(
            name,
            kind,
            st.st_mode & 0o7777,  # stat.S_IMODE
            uid,
            gid,
            owner[0],
            owner[1],
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            st.st_dev,
            st.st_size if kind == "file" else 0,
            st.st_nlink if kind != "dir" else 1,
            target,
            st.st_rdev if kind in ("chardev", "blockdev") else 0,
            found,
        )

    def user(self, uid: int) -> str | None:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = None
        return self._users[uid]

    def group(self, gid: int) -> str | None:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = None
        return self._groups[gid]

    # ------------------------------------------------------------ files
    def file(
        self,
        path: bytes,
        rel: bytes,
        node: Node,
        st: os.stat_result,
        prev: Node | None,
        *,
        xattrs_later: bool = False,
    ) -> _PendingNode:
        """The file's pending node; ``xattrs_later``: its xattrs are to come with its read
        on a batch thread (then it is one: see :meth:`entry`)."""
        c = self.counters
        c.total_size += st.st_size
        if prev is not None and _unchanged(prev, st):
            c.files_unchanged += 1
            self.meter.advance(files=1, nbytes=st.st_size, current=rel)
            node.size = prev.size
            return _PendingNode(node, list(prev.content))
        if self.subtrees is not None:  # to_read counts only for launching them
            self.to_read += self._read_cost(st, prev)
            self.subtrees.ready(self.to_read, self._entries())  # starts before the read
        key = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
        parts = self._links.get(key) if key is not None else None
        counted = 0  # bytes the meter already saw chunk by chunk
        if parts is None and key is None and self.workers is not None and st.st_size > 0:
            pn = _PendingNode(node)  # contents come from a worker process
            sparse = st.st_blocks * 512 < st.st_size
            large = st.st_size >= self.small
            pn.slot = self.workers.add(path, st.st_size, sparse, large, (pn, rel, prev is None))
            return pn
        if parts is None and key is None and 0 < st.st_size < self.small:
            pn = _PendingNode(node)  # read and stored on a batch thread (small_files)
            sparse = st.st_blocks * 512 < st.st_size
            ref = self.batcher.add_file(self.fs, path, st.st_size, sparse, xattrs_later)
            pn.small = (ref, path, rel, prev is None)
            return pn
        if parts is None and key is None and st.st_size > 0 and READ_ON_THREAD:
            pn = _PendingNode(node)  # chunked on the reader thread while the walk goes on
            if self._reader is None:
                self._reader = ThreadPoolExecutor(self.readers, thread_name_prefix="sv-read")
            future = self._reader.submit(self._read_large, path, st, prev)
            pn.large = (future, path, rel, prev is None)
            return pn
        if parts is None:
            parts, counted = self.read_file(path, st)
            if key is not None:
                self._links[key] = parts
            c.bytes_read += sum(length for _, length in parts)
        if prev is None:
            c.files_new += 1
        else:
            c.files_changed += 1
        size = sum(length for _, length in parts)
        self.meter.advance(files=1, nbytes=size - counted, current=rel)
        node.size = size
        return _PendingNode(node, parts)

    def _read_cost(self, st: os.stat_result, prev: Node | None) -> int:
        """What reading a changed file will cost, in bytes to cut, for the launch of
        walk workers (``walk_workers.LAUNCH_BYTES``): its allocated bytes (a sparse
        file's holes are read as zeros the kernel makes, and are mostly not cut), a
        ``PARENT_SHARE`` of them when its parent version's chunks can be taken
        (:class:`ParentCuts`: hashed, not cut, most of a grown log or a disk image with
        a few changed blocks)."""
        cost = min(st.st_size, st.st_blocks * 512)
        if prev is not None and len(prev.content) > 1 and self._blob_id is not None:
            return int(cost * PARENT_SHARE)
        return cost

    def _small_reads(self, pnodes: list[_PendingNode]) -> None:
        """A directory's small files' outcomes from their batches: what :meth:`file` does
        after reading (:meth:`_read_done`), inline, and one progress report for them
        all (per file, these calls were ~8% of the time the walk worker held the GIL in
        the full set's initial backup)."""
        files = nbytes = new = 0
        rel = b""
        for pn in pnodes:
            small = pn.small
            if small is None:
                continue
            pn.small = None
            outcome = small[0].outcome()
            if isinstance(outcome, OSError):
                pn.dropped = True
                self.error(small[1], outcome)
                continue
            node = pn.node
            assert node is not None
            blob_id = outcome[0]
            size = node.size = outcome[1]
            if len(outcome) == 3:
                node.xattrs = outcome[2]
            node.content = ((None if blob_id is None else blob_id.hex(), size),)
            files += 1
            nbytes += size
            new += small[3]
            rel = small[2]
        if files:
            c = self.counters
            c.bytes_read += nbytes
            c.files_new += new
            c.files_changed += files - new
            self.meter.advance(files=files, nbytes=nbytes, current=rel)

    def _read_done(self, pn: _PendingNode, parts: list[Part], size: int, new: bool) -> None:
        """A file read off the walk's thread: its parts and size, and the counters."""
        pn.parts = parts
        assert pn.node is not None
        pn.node.size = size
        c = self.counters
        c.bytes_read += size
        if new:
            c.files_new += 1
        else:
            c.files_changed += 1

    def _read_large(self, path: bytes, st: os.stat_result, prev: Node | None) -> list[Part]:
        """A chunked file's parts, on the reader thread: :meth:`read_file` less the
        progress reports (the meter is the walk's; :meth:`_relay_reads` passes the bytes
        on). Gives up at the next chunk once the walk is closing (a failed backup). The
        parent version's chunks it finds unchanged are neither cut nor stored again
        (:class:`ParentCuts`)."""
        sparse = st.st_blocks * 512 < st.st_size
        return self._chunk_file(path, sparse, self._count_read, self._parent_cuts(prev, sparse))

    def _parent_cuts(self, prev: Node | None, sparse: bool) -> ParentCuts | None:
        blob_id, has_blob = self._blob_id, self._has_blob
        if prev is None or prev.type != "file" or len(prev.content) < 2:
            return None
        if blob_id is None or has_blob is None:
            return None

        def same(ref: str | None, view: memoryview) -> bool:
            if ref is None:  # a hole: one only where the plain path would find one
                return sparse and all_zero(view)
            wanted = bytes.fromhex(ref)
            return blob_id(view) == wanted and has_blob(wanted)

        return ParentCuts(prev.content, same)

    def _count_read(self, nbytes: int) -> None:
        with self._read_lock:
            self._read_bytes += nbytes

    def _relay_reads(self) -> None:
        """Report the bytes the reader thread chunked since the last report."""
        done = self._read_bytes
        if done > self._reported:
            self.meter.advance(nbytes=done - self._reported)
            self._reported = done

    def _large_read(
        self, pn: _PendingNode, future: Future[list[Part]], path: bytes, rel: bytes, new: bool
    ) -> None:
        """A chunked file's outcome from the reader thread: what :meth:`file` does after
        :meth:`read_file` (waiting for it, the walk's thread reports its progress)."""
        pn.large = None
        while not future.done():
            futures.wait([future], timeout=RELAY_SECONDS)
            self._relay_reads()
        try:
            parts = future.result()
        except OSError as exc:
            pn.dropped = True
            self.error(path, exc)
            return
        self._relay_reads()
        self._read_done(pn, parts, sum(length for _, length in parts), new)
        self.meter.advance(files=1, current=rel)

    def _harvested(self, slot: file_workers.Slot, nbytes: int) -> None:
        """A worker's result for (part of) a file: what :meth:`file` does after reading."""
        pn, rel, new = slot.owner
        if nbytes:
            self.meter.advance(nbytes=nbytes)
        if not slot.done:
            return
        slot.owner = None
        if slot.error is not None:
            pn.dropped = True
            self.error(slot.path, slot.error)
            return
        pn.parts = [(None if bid is None else bid.hex(), n) for bid, n in slot.parts]
        size = sum(n for _, n in slot.parts)
        c = self.counters
        c.bytes_read += size
        if new:
            c.files_new += 1
        else:
            c.files_changed += 1
        assert pn.node is not None
        pn.node.size = size
        self.meter.advance(files=1, current=rel)

    def read_file(self, path: bytes, st: os.stat_result) -> tuple[list[Part], int]:
        """The file's parts, and how many of its bytes were already reported as progress.

        A chunked (large) file reports each chunk as it is read, so a backup of one big
        file shows progress while it runs, not only when the file is done.
        """
        size = st.st_size
        if size == 0:
            return [], 0
        sparse = st.st_blocks * 512 < size
        if size < self.small:
            data = self.fs.read_small(path, size)
            if sparse and data == bytes(len(data)):
                return [(None, len(data))], 0
            return [(self.batcher.add(data), len(data))], 0
        parts = self._chunk_file(path, sparse, lambda n: self.meter.advance(nbytes=n))
        return parts, sum(length for _, length in parts)

    def _chunk_file(
        self,
        path: bytes,
        sparse: bool,
        count: Callable[[int], None],
        parent: ParentCuts | None = None,
    ) -> list[Part]:
        """A chunked file's parts, ``count`` told each chunk's length as it is stored;
        gives up at the next chunk once the walk is closing (a failed backup)."""
        self._release_held(HELD_BUFFERS)
        parts: list[Part] = []
        in_buffer: list[Future[bytes]] = []  # blobs stored from views of the chunker's buffer
        chunker = self.chunker if parent is None else self.chunker.with_parent(parent)
        for view in self.fs.chunks(path, chunker):
            if view is None:  # the chunker reuses its buffer next (Chunker.views_of_file)
                futures.wait(in_buffer)
                in_buffer.clear()
                continue
            if self._stopping:
                raise errors.EngineError(detail="backup stopped")
            if isinstance(view, Known):  # the parent's chunk, stored already
                parts.append((view.ref, view.length))
                count(view.length)
                continue
            part = self.submit(view, sparse)
            if isinstance(part[0], Future):
                in_buffer.append(part[0])
            parts.append(part)
            count(part[1])
        if in_buffer:
            self._held.append(in_buffer)
        return parts

    def _release_held(self, keep: int) -> None:
        """Wait until at most ``keep`` earlier files' buffers are still read by blob
        threads. A file's buffer (twice ``max_size``, read into) lives as long as a view
        of it is being stored; a reader that takes most chunks as known (a rerun of
        grown logs) moves on at once, and each file's last chunks then pinned a buffer
        of its own: 7 of them (112 MiB mapped, 50 MiB resident) in the media set's
        incremental backup."""
        while len(self._held) > keep:
            try:
                oldest = self._held.popleft()
            except IndexError:  # the other reading thread took it (a hard link's read)
                break
            futures.wait(oldest)

    def submit(self, data: bytes | memoryview, sparse: bool) -> Part:
        n = len(data)
        if sparse and all_zero(data):
            return (None, n)
        return (self.repo.add_blob_async("data", data), n)


def walk_subtree(
    repo: BlobStore,
    fs: FileSystem,
    excludes: Excludes,
    one_file_system: bool,
    meter: ProgressMeter,
    path: bytes,
    rel: bytes,
    dev: int,
    parent_tree: str | None,
) -> tuple[str, _Counters, list[snapshots.ManifestError]]:
    """One directory walked whole by an archiver of its own (a walk worker's task, or
    one this process took back): its tree id, counters and errors."""
    arch = _Archiver(repo, fs, excludes, one_file_system, meter)
    try:
        pd = arch.walk_dir(path, rel, dev, parent_tree)
        arch.drain()
    finally:
        arch.close()
    assert pd.tree_id is not None
    return _hex(pd.tree_id), arch.counters, arch.errors


def _as_before(pd: _PendingDir) -> bool:
    """Whether a directory's entries are exactly its parent's (then so is its tree):
    as many, each one taken as it was (names are unique on both sides), each
    subdirectory's tree the one it had."""
    if len(pd.nodes) != pd.parent_count:
        return False
    for pn in pd.nodes:
        if pn.raw is None or pn.node is not None:
            return False
        if pn.child is not None:
            assert pn.child.tree_id is not None
            if _hex(pn.child.tree_id) != pn.raw.get("subtree"):
                return False
    return True


_FILE_INTS = {
    "mode": 0,
    "uid": 0,
    "gid": 0,
    "mtime_ns": 0,
    "ctime_ns": 0,
    "inode": 0,
    "device": 0,
    "size": 0,
    "nlink": 1,
}
"""A file node's integer fields and their defaults (``node_to_dict`` leaves those out)."""
_NOT_INT = object()


def _canonical_file(raw: Raw) -> bool:
    """Whether a parent's file node is exactly what ``node_to_dict(node_from_dict(raw))``
    gives: only keys a file node writes, each at a value it writes (ints as ints, no
    field at its default, names and owners as text, content as [id or null, int]
    pairs). Anything else (base64 names, xattrs, ``extra``, a hand-made tree) is not,
    and goes the long way."""
    if raw.get("type") != "file" or type(raw.get("name")) is not str:
        return False
    for key, value in raw.items():
        default = _FILE_INTS.get(key, _NOT_INT)
        if default is not _NOT_INT:
            if type(value) is not int or value == default:
                return False
        elif key == "content":
            if type(value) is not list or not value:
                return False
            for piece in value:
                if type(piece) is not list or len(piece) != 2:
                    return False
                blob, length = piece
                if (blob is not None and type(blob) is not str) or type(length) is not int:
                    return False
        elif key in ("user", "group"):
            if type(value) is not str:
                return False
        elif key not in ("type", "name"):
            return False
    return True


def encode_pending(pnodes: list[_PendingNode], from_parent: bool = True) -> bytes:
    """A changed directory's tree blob: the bytes ``encode_tree`` gives for its resolved
    nodes. An unchanged file whose parent node is canonical (:func:`_canonical_file`)
    is written as the parent's JSON object itself, without decoding it into a node and
    encoding it again (in an incremental backup most entries of a changed directory are
    such files; the round trip was ~40% of the walk's CPU). The rest as in
    ``tree.encode_tree``, by ``tree.encode_dicts``: sorted by raw name, unique.
    A directory with no such file (every directory of an initial backup) is encoded by
    ``encode_tree`` itself; ``from_parent=False`` says it has none without looking (a
    directory whose parent version had no entries)."""
    if not from_parent or not any(pn.node is None and pn.child is None for pn in pnodes):
        return encode_tree([_resolve(pn) for pn in pnodes if not pn.dropped])
    docs: list[tuple[bytes, dict[str, Any]]] = []
    for pn in pnodes:
        if pn.dropped:
            continue
        raw = pn.raw
        if pn.node is None and pn.child is None and raw is not None and _canonical_file(raw):
            docs.append((raw["name"].encode("utf-8"), raw))
        else:
            node = _resolve(pn)
            docs.append((node.name, node_to_dict(node)))
    return encode_dicts(docs)


class _ParentTrees:
    """Parent trees read as a restore reads its trees where packs are local files
    (:mod:`.restore_reads`: pack files kept open, one kept buffer), not by ``get_blob``'s
    open, read and close of a pack file for each (13,400 trees in a rerun of the full
    set: 24 -> 14 us a tree read); on the walk's thread only. Damage raises
    IntegrityError as ``get_blob`` does; a read the system refuses is tried again by
    ``get_blob``, whose error (an EngineError) costs the walk a full read, not the
    backup."""

    def __init__(self, repo: BlobStore) -> None:
        self._runs = restore_reads.RunReader.start(repo)
        self._get_blob = repo.get_blob
        self._single: Callable[[bytes], bytes | memoryview] | None = None

    def get(self, blob_id: bytes) -> bytes:
        if self._runs is None:
            return self._get_blob(blob_id)
        if self._single is None:
            self._single = self._runs.run(()).get  # the calling thread's buffer and files
        try:
            data = self._single(blob_id)
        except OSError:  # read again as get_blob reads, whose error is the store's
            return self._get_blob(blob_id)
        return data if isinstance(data, bytes) else bytes(data)

    def close(self) -> None:
        if self._runs is not None:
            self._runs.close()


def raw_tree(data: bytes) -> dict[bytes, Raw]:
    """A tree blob's nodes as JSON objects by raw name (checked: the version, and that
    each node is an object with a name)."""
    doc = json.loads(data)
    if doc.get("version") != TREE_VERSION:
        raise ValueError(f"unsupported tree version {doc.get('version')!r}")
    out: dict[bytes, Raw] = {}
    for raw in doc["nodes"]:
        name = raw.get("name")
        if type(name) is str:
            out[name.encode("utf-8")] = raw
        else:
            key = base64.b64decode(raw["name_b64"], validate=True)
            out[key] = raw
    return out


def _unchanged(prev: Node, st: os.stat_result) -> bool:
    return (
        prev.type == "file"
        and prev.size == st.st_size
        and prev.mtime_ns == st.st_mtime_ns
        and prev.ctime_ns == st.st_ctime_ns
        and prev.inode == st.st_ino
    )


# ---------------------------------------------------------------- public API


@gc_tuning.fewer_collections()
def backup_paths(
    repo: BlobStore,
    paths: Sequence[str | bytes | os.PathLike[str]],
    *,
    now: datetime,
    parent: str | None = None,
    excludes: Sequence[str] = (),
    one_file_system: bool = False,
    progress: ProgressCallback | None = None,
    hostname: str | None = None,
    tags: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    clock: Clock | None = None,
    fs: FileSystem | None = None,
    processes: int | None = None,
    walkers: int | None = None,
) -> snapshots.BackupResult:
    """Back up ``paths``: one directory becomes the root tree itself (its contents);
    several paths (or one non-directory) become named entries of the root.

    ``walkers``: worker processes that each walk whole subtrees (:mod:`.walk_workers`);
    0 = none; None = ``SNOWVAULT_ENGINE_WALKERS`` when set, else for an initial backup
    (no ``parent``) one per core but one, launched once the backup is seen to be large,
    and for a rerun as many, launched only by bytes to read (``RERUN_WALKERS``).
    ``processes``: worker processes that only read, chunk, hash, compress and seal file
    contents (:mod:`.file_workers`), used when no walkers run;
    None = ``SNOWVAULT_ENGINE_PROCESSES`` (default 0). ``walkers=0, processes=0`` is the
    single-process reference path; a custom ``fs`` always uses it."""
    if not paths:
        raise core_errors.InvalidInput(detail="nothing to back up: no paths given")
    malloc_tuning.fix_mmap_threshold()
    fs = fs or FileSystem()
    raw = [os.path.abspath(os.fsencode(p)) for p in paths]
    meter = ProgressMeter("backup", progress, clock or SystemClock())
    parent_tree = _parent_tree(repo, parent)
    workers = subtrees = None
    rules = Excludes(excludes)
    by_bytes = False
    if type(fs) is FileSystem:
        # content workers asked for (argument or environment) win over the default walk
        asked = processes if processes is not None else _env_int("SNOWVAULT_ENGINE_PROCESSES")
        default_walk = walkers is None and not os.environ.get("SNOWVAULT_ENGINE_WALKERS")
        # a rerun by default: a lazy pool, as for a small initial backup (no prescan of
        # the roots), launched by bytes only (see RERUN_WALKERS)
        by_bytes = parent is not None and RERUN_WALKERS and default_walk
        if not (asked and default_walk):
            subtrees = walk_workers.SubtreeWorkers.start(
                repo,
                walkers,
                excludes,
                one_file_system,
                rerun=parent is not None and not by_bytes,
                roots=() if by_bytes else raw,
            )
        if subtrees is None and processes != 0:
            workers = file_workers.ContentWorkers.start(repo, processes)
    arch = _Archiver(repo, fs, rules, one_file_system, meter, workers, subtrees)
    arch.launch_by_entries = not by_bytes
    if parent is not None:
        arch.readers = RERUN_READERS
    if subtrees is not None:
        subtrees.attach(meter, arch.walk_subtree)
        want = subtrees.count * walk_workers.TASKS_PER_WORKER
        arch.delegated = walk_workers.split_points(raw, rules, want)
    stored_before = stream_backup.stored_bytes(repo)
    try:
        root = _walk_roots(arch, fs, raw, parent_tree)
        arch.drain()
        if workers is not None:
            workers.close()
        if subtrees is not None:
            _add_totals(arch, subtrees.close())
    finally:
        arch.close()
        if workers is not None:
            workers.abort()
        if subtrees is not None:
            subtrees.abort()
    assert root.tree_id is not None
    tree_id = _hex(root.tree_id)
    c = arch.counters
    summary = snapshots.Summary(
        files_new=c.files_new,
        files_changed=c.files_changed,
        files_unchanged=c.files_unchanged,
        dirs=c.dirs,
        other=c.other,
        bytes_read=c.bytes_read,
        bytes_added=stream_backup.stored_bytes(repo) - stored_before + arch.stored_elsewhere,
        total_size=c.total_size,
        duration_seconds=meter.elapsed(),
    )
    manifest = snapshots.Manifest(
        time=now,
        hostname=hostname if hostname is not None else socket.gethostname(),
        paths=[p.decode("utf-8", "surrogateescape") for p in raw],
        kind="directory",
        tree=tree_id,
        parent=parent,
        tags=dict(tags or {}),
        partial=bool(arch.errors),
        errors=arch.errors,
        summary=summary,
        metadata=dict(metadata or {}),
        root=_root_entry(arch, fs, raw),
    )
    return stream_backup.commit(repo, manifest, meter)


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else 0


def _add_totals(arch: _Archiver, totals: walk_workers.Totals) -> None:
    """The delegated subtrees' counters and errors, in the walk's order."""
    c = arch.counters
    for w in totals.counters:
        c.files_new += w.files_new
        c.files_changed += w.files_changed
        c.files_unchanged += w.files_unchanged
        c.dirs += w.dirs
        c.other += w.other
        c.bytes_read += w.bytes_read
        c.total_size += w.total_size
    arch.errors.extend(totals.errors)  # the meter counted them as they came
    arch.stored_elsewhere += totals.stored_bytes


def _root_entry(arch: _Archiver, fs: FileSystem, raw: list[bytes]) -> dict[str, Any] | None:
    """One backed-up directory's own metadata (the root tree holds only its contents)."""
    if len(raw) != 1:
        return None
    try:
        st = fs.lstat(raw[0])
        if not stat.S_ISDIR(st.st_mode):
            return None
        return node_to_dict(arch.make_node(raw[0], b"", "dir", st))
    except OSError:
        return None


def _walk_roots(
    arch: _Archiver, fs: FileSystem, raw: list[bytes], parent_tree: str | None
) -> _PendingDir:
    if len(raw) == 1:
        st = _lstat_root(fs, raw[0])
        if stat.S_ISDIR(st.st_mode):
            return arch.walk_dir(raw[0], b"", fs.device(raw[0], st), parent_tree)
    names = [os.path.basename(p.rstrip(b"/")) or b"root" for p in raw]
    if len(set(names)) != len(names):
        raise core_errors.InvalidInput(detail="two paths to back up have the same name")
    prev_nodes = arch.load_parent(parent_tree)
    prev = prev_nodes or {}
    pnodes = []
    for path, name in zip(raw, names):
        st = _lstat_root(fs, path)
        pn = arch.entry(path, name, name, st, fs.device(path, st), prev.get(name))
        if pn is not None:
            pnodes.append(pn)
    root = _PendingDir(pnodes, len(prev), parent_tree if prev_nodes is not None else None)
    arch.enqueue(root)
    return root


def _lstat_root(fs: FileSystem, path: bytes) -> os.stat_result:
    try:
        return fs.lstat(path)
    except OSError as exc:
        text = path.decode("utf-8", "backslashreplace")
        raise core_errors.NotFound(kind="path", name=f"{text} ({exc.strerror})") from exc


def _parent_tree(repo: BlobStore, parent: str | None) -> str | None:
    if parent is None:
        return None
    doc = repo.load_manifest(parent)
    return snapshots.Manifest.from_dict(doc, f"recovery point {parent}").tree


BackupResult = snapshots.BackupResult
backup_stream = stream_backup.backup_stream

__all__ = [
    "BackupResult",
    "BlobStore",
    "FileSystem",
    "backup_paths",
    "backup_stream",
]
