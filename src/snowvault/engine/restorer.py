"""Restore a recovery point (or chosen paths of it) into a target directory.

The root tree's entries are written into ``target`` (the backed-up directory's
*contents*). Nothing is written until the whole plan is known and checked: an existing
path is a :class:`~snowvault.core.errors.Conflict` unless ``overwrite=True`` (files are
then written beside and renamed over the old ones).

Order: directories first (owner-writable), then file contents on a small thread pool
(files sorted by where their first blob lives, so reads sweep the packs in order; holes
are skipped and the file truncated to size, so it stays sparse), then hard links, links,
FIFOs and device nodes, then directory metadata last, deepest first, so writing contents
does not disturb restored times. Ownership is restored only when running as root.

Every blob is authenticated; a damaged one is reported as an error naming the file it
belongs to, and that file is removed rather than left wrong. From a repository on local
disk the threads read their runs' blobs a few pack segments at a time into buffers they
keep (:mod:`snowvault.engine.restore_reads`); any other source is read blob by blob
through its ``get_blob``, the reference path.

A whole recovery point restored into a new or empty directory (nothing there can
conflict) is *streamed* instead of planned: trees are read as the restore goes, files
sorted into pack order a few thousand at a time, so memory does not grow with the number
of files; there a damaged subtree is an error naming its directory and the rest is
restored (a planned restore refuses before writing anything).

    result = restore(repo, rp_id, "/restore/here", include=["etc/ssl"])

Knows nothing of the control plane; never prints (progress goes to a callback).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from snowvault.core import errors as core_errors
from snowvault.core.clock import Clock, SystemClock
from snowvault.engine import (
    errors,
    gc_tuning,
    malloc_tuning,
    restore_reads,
    restore_workers,
    snapshots,
)
from snowvault.engine.progress import ProgressCallback, ProgressMeter
from snowvault.engine.tree import Node, check_names, decode_tree, node_from_dict

_TMP_SUFFIX = b".snowvault-restore"
_PROGRESS_BLOB = restore_reads.DIRECT
"""A blob this large counts in the progress when written; smaller ones per run."""


class BlobReader(Protocol):
    def get_blob(self, blob_id: bytes) -> bytes: ...


class TreeSource(Protocol):
    """What reading trees needs (a Repository is one)."""

    def get_blob(self, blob_id: bytes) -> bytes: ...
    def load_manifest(self, rp_id: str) -> dict[str, Any]: ...


class BlobSource(TreeSource, Protocol):
    def blob_location(self, blob_id: bytes) -> tuple[str, int, int]: ...


@dataclass(frozen=True)
class RestoreError:
    path: str
    error: str


@dataclass(frozen=True)
class RestoreResult:
    files: int
    bytes: int
    errors: list[RestoreError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _text(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def load_tree(repo: BlobReader, tree_id: str, where: bytes) -> list[Node]:
    """A tree's nodes; a damaged tree raises IntegrityError naming the directory, and so
    does one with a name that is not a single path component (empty, ``.``, ``..``, a
    ``/`` or a NUL in it) or a name twice: joined to the target, such a name would
    reach outside it (a tree is written by whoever made the backup, an agent's host
    too), so no entry of that directory is restored."""
    label = f"directory /{_text(where)} (tree {tree_id})"
    try:
        raw = repo.get_blob(bytes.fromhex(tree_id))
    except errors.IntegrityError as exc:
        raise errors.IntegrityError(name=label, detail=str(exc)) from exc
    nodes = decode_tree(raw, label)
    check_names(nodes, label)
    return nodes


def root_tree(repo: TreeSource, rp_id: str) -> str:
    return _manifest(repo, rp_id).tree


def _manifest(repo: TreeSource, rp_id: str) -> snapshots.Manifest:
    doc = repo.load_manifest(rp_id)
    return snapshots.Manifest.from_dict(doc, f"recovery point {rp_id}")


# ---------------------------------------------------------------- planning


@dataclass
class _Plan:
    dirs: list[tuple[bytes, Node]] = field(default_factory=list)
    files: list[tuple[bytes, Node]] = field(default_factory=list)
    links: list[tuple[bytes, Node, bytes]] = field(default_factory=list)
    others: list[tuple[bytes, Node]] = field(default_factory=list)
    first_link: dict[tuple[int, int], bytes] = field(default_factory=dict)


def _split(include: str) -> tuple[bytes, ...]:
    parts = tuple(p for p in os.fsencode(include).split(b"/") if p and p != b".")
    if b".." in parts:
        raise core_errors.InvalidInput(detail=f"include path may not contain '..': {include}")
    return parts


class _Planner:
    def __init__(self, repo: BlobSource, includes: list[tuple[bytes, ...]]) -> None:
        self.repo = repo
        self.includes = includes
        self.matched: set[tuple[bytes, ...]] = set()
        self.plan = _Plan()

    def walk(self, tree_id: str, parts: tuple[bytes, ...], everything: bool) -> None:
        for node in load_tree(self.repo, tree_id, b"/".join(parts)):
            child = (*parts, node.name)
            take, descend = everything, everything
            if not everything:
                for inc in self.includes:
                    if child[: len(inc)] == inc:
                        take = descend = True
                        self.matched.add(inc)
                    elif inc[: len(child)] == child and node.type == "dir":
                        descend = True
            if take or descend:
                self.add(b"/".join(child), node, take, descend)

    def add(self, rel: bytes, node: Node, take: bool, descend: bool) -> None:
        if node.type == "dir":
            self.plan.dirs.append((rel, node))
            if node.subtree is not None:
                self.walk(node.subtree, tuple(rel.split(b"/")), take)
        elif node.link_key is not None and node.link_key in self.plan.first_link:
            self.plan.links.append((rel, node, self.plan.first_link[node.link_key]))
        elif node.type == "file":
            if node.link_key is not None:
                self.plan.first_link[node.link_key] = rel
            self.plan.files.append((rel, node))
        else:
            self.plan.others.append((rel, node))


# ---------------------------------------------------------------- restoring


class _Restorer:
    def __init__(
        self, repo: BlobSource, target: bytes, overwrite: bool, meter: ProgressMeter
    ) -> None:
        self.repo = repo
        self.runs = restore_reads.RunReader.start(repo)
        make_reader = getattr(repo, "pack_reader", None)
        self.reader: BlobReader = (
            make_reader() if make_reader is not None and self.runs is None else repo
        )
        self.target = target
        self._prefix = target.rstrip(b"/") + b"/"
        self.overwrite = overwrite
        self.meter = meter
        self.is_root = os.geteuid() == 0
        self.create_mode = 0  # see _restore_file; a streamed restore sets it
        self.new_owner: tuple[int, int] | None = None  # see set_meta and make_dir
        self.learn_owner = False  # a streamed restore as root sets it
        self.errors: list[RestoreError] = []
        self.skipped: list[str] = []
        self.files = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self._run = threading.local()  # .get: the blob reader of this thread's run

    def path(self, rel: bytes) -> bytes:
        """``rel`` under the target: joined, not ``os.path.join``ed (names are single
        components, see :func:`load_tree`, so ``rel`` is never absolute)."""
        return self._prefix + rel

    def error(self, rel: bytes, detail: str) -> None:
        self.errors.append(RestoreError(_text(rel), detail))
        self.meter.error(rel)

    # ------------------------------------------------------------ conflicts
    def check_conflicts(self, plan: _Plan) -> None:
        """Refuse to replace what is there (see :meth:`_check`); a target that does not
        exist yet or is an empty directory holds nothing to check against, which spares
        a full restore one lstat per entry."""
        try:
            with os.scandir(self.target) as entries:
                if next(entries, None) is None:
                    return
        except FileNotFoundError:
            return
        except (NotADirectoryError, PermissionError):
            pass  # the checks below meet (and report) it as before
        for rel, _ in plan.dirs:
            self._check(rel, want_dir=True)
        rels = (
            [r for r, _ in plan.files] + [r for r, *_ in plan.links] + [r for r, _ in plan.others]
        )
        for rel in rels:
            self._check(rel, want_dir=False)

    def _check(self, rel: bytes, *, want_dir: bool) -> None:
        try:
            st = os.lstat(self.path(rel))
        except FileNotFoundError:
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if want_dir and is_dir:
            return
        if self.overwrite and not is_dir:
            return
        what = "directory" if is_dir else "file"
        raise core_errors.Conflict(
            detail=f"refusing to overwrite existing {what} {_text(self.path(rel))}"
            + ("" if is_dir else " (pass overwrite to replace it)"),
            path=_text(self.path(rel)),
        )

    def _clear(self, path: bytes) -> None:
        """Make room for a new non-file entry (overwrite mode; conflicts checked before)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # ------------------------------------------------------------ directories
    def make_dirs(self, plan: _Plan) -> None:
        os.makedirs(self.target, exist_ok=True)
        for rel, _ in plan.dirs:
            self.make_dir(rel)

    def make_dir(self, rel: bytes, *, fresh: bool = False) -> None:
        """``fresh``: the parent was made by this restore, so try ``mkdir`` first (it
        never follows a symlink); what is already there gets the checks below."""
        path = self.path(rel)
        if fresh:
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                self.new_owner = None  # not made here: its files' group is unknown
                self.learn_owner = False
            else:
                if self.learn_owner:
                    self._learn_owner(path)
                return
        if not os.path.isdir(path) or os.path.islink(path):
            self._clear(path)
            os.mkdir(path, 0o700)

    def _learn_owner(self, path: bytes) -> None:
        """The owner the kernel gives what this restore creates, read from the first
        directory it made: the effective uid, and the group the file system's rule gives
        (the effective gid, a set-group-ID parent's group, or a ``grpid`` mount's parent
        group); every directory the restore makes gets the same, so every file does too.
        A file whose node has that owner needs no fchown (one system call per file)."""
        self.learn_owner = False
        try:
            st = os.lstat(path)
        except OSError:
            return
        self.new_owner = (st.st_uid, st.st_gid)

    def finish_dirs(self, plan: _Plan) -> None:
        for rel, node in reversed(plan.dirs):
            try:
                self.set_meta(self.path(rel), node)
            except OSError as exc:
                self.error(rel, f"cannot set metadata: {exc.strerror}")

    def finish_root(self, node: Node) -> None:
        """A full restore: the target gets the backed-up directory's own metadata too."""
        try:
            self.set_meta(self.target, node)
        except OSError as exc:
            self.error(b".", f"cannot set metadata: {exc.strerror}")

    # ------------------------------------------------------------ files
    def restore_files(self, plan: _Plan, workers: int) -> None:
        """Files in pack order, handed to the pool in runs (up to ``RUN_FILES`` files or
        ``RUN_BYTES`` bytes), not one by one: a hand-off per small file cost more in
        futex wake-ups and GIL hand-overs than writing the file. Two threads by default:
        every system call of a restore hands the GIL over, so each thread more mostly
        adds futex calls (strace of the quick set's 12,000 files: 1,700 with one thread,
        11,600 with two, 133,000 with four, and more CPU each time)."""
        with _Feed(self, workers) as feed:
            feed.put(plan.files)

    def order(self, files: list[tuple[bytes, Node]]) -> list[tuple[bytes, Node]]:
        """``files`` sorted by where their first blob is (reads sweep the packs)."""
        index = getattr(self.repo, "master_index", None)
        if index is not None:
            return sorted(files, key=lambda item: self._position(index, item[1]))
        return sorted(files, key=lambda item: self._first_location(item[1]))

    def _restore_run(self, run: list[tuple[bytes, Node]]) -> None:
        """One run of files on this thread: their small blobs read a few segments at a
        time (:mod:`restore_reads`), progress counted once for the run."""
        ids = []
        small = 0
        for _, node in run:
            for blob, length in node.content:
                if blob is not None:
                    ids.append(blob)
                    if length < _PROGRESS_BLOB:
                        small += length
        if self.runs is not None:
            self._run.get = self.runs.run(map(bytes.fromhex, ids)).get
        files = nbytes = 0
        try:
            for item in run:
                written = self._restore_file(item)
                if written >= 0:
                    files += 1
                    nbytes += written
        finally:
            with self.lock:
                self.files += files
                self.bytes += nbytes
            self.meter.advance(files=files, nbytes=small, current=run[-1][0])

    @staticmethod
    def _position(index: Any, node: Node) -> int:
        """Where the file's first blob is, as one int (see MasterIndex.position)."""
        for blob, _ in node.content:
            if blob is not None:
                position: int | None = index.position(bytes.fromhex(blob))
                return -1 if position is None else position
        return -1

    def _first_location(self, node: Node) -> tuple[str, int]:
        for blob, _ in node.content:
            if blob is not None:
                try:
                    pack, offset, _length = self.repo.blob_location(bytes.fromhex(blob))
                except errors.EngineError:
                    return ("", 0)
                return (pack, offset)
        return ("", 0)

    def _restore_file(self, item: tuple[bytes, Node]) -> int:
        """Bytes written, or -1 when the file was not restored (an error recorded).

        Created with its final permission bits when the process umask keeps them (and
        there are no set-id or sticky bits, and no default ACL on the target to change
        them), which spares an fchmod per file; the descriptor is writable whatever
        the mode says."""
        rel, node = item
        final = self.path(rel)
        path = final + _TMP_SUFFIX if self.overwrite else final
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        mode = node.mode & 0o7777
        exact = mode & self.create_mode == mode
        create = mode if exact else 0o600
        try:
            try:
                fd = os.open(path, flags, create)
            except FileExistsError:
                if path == final:
                    raise
                # a killed attempt's temp file (a retried restore): unlink (it does not
                # follow a symlink) and create it afresh, once
                os.unlink(path)
                fd = os.open(path, flags, create)
        except OSError as exc:
            self.error(rel, f"cannot create: {exc.strerror}")
            return -1
        try:
            written, end = self._write_content(fd, rel, node)
            if end < node.size:  # a trailing hole: the size without writing it
                os.ftruncate(fd, node.size)
            self.set_meta(path, node, fd=fd, mode_set=exact)
        except (errors.EngineError, OSError) as exc:
            os.close(fd)
            os.unlink(path)
            detail = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.error(rel, f"not restored: {detail}")
            return -1
        os.close(fd)
        if path != final:
            os.replace(path, final)
        return written

    def _write_content(self, fd: int, rel: bytes, node: Node) -> tuple[int, int]:
        """Bytes written, and where the last of them ended (holes are skipped); progress
        in bytes is counted here for a large blob (small ones with their run)."""
        get: Callable[[bytes], bytes | memoryview] = getattr(self._run, "get", self.reader.get_blob)
        offset = 0
        written = 0
        end = 0
        for blob, length in node.content:
            if blob is not None:
                data = get(bytes.fromhex(blob))
                if len(data) != length:
                    raise errors.IntegrityError(
                        name=_text(rel), detail=f"blob {blob} has {len(data)} bytes, want {length}"
                    )
                view = memoryview(data)
                while view:
                    n = os.pwrite(fd, view, offset + (length - len(view)))
                    view = view[n:]
                written += length
                end = offset + length
                if length >= _PROGRESS_BLOB:
                    self.meter.advance(nbytes=length)
            offset += length
        return written, end

    # ------------------------------------------------------------ the rest
    def restore_links(self, plan: _Plan) -> None:
        for rel, _node, first in plan.links:
            path = self.path(rel)
            try:
                if self.overwrite:
                    self._clear(path)
                os.link(self.path(first), path, follow_symlinks=False)
                self.files += 1
                self.meter.advance(files=1, current=rel)
            except OSError as exc:
                self.error(rel, f"cannot hard-link to {_text(first)}: {exc.strerror}")

    def restore_others(self, plan: _Plan) -> None:
        for rel, node in plan.others:
            path = self.path(rel)
            try:
                if self.overwrite:
                    self._clear(path)
                if not self._make_special(path, rel, node):
                    continue
                self.set_meta(path, node)
                self.files += 1
                self.meter.advance(files=1, current=rel)
            except OSError as exc:
                self.error(rel, f"cannot create {node.type}: {exc.strerror}")

    def _make_special(self, path: bytes, rel: bytes, node: Node) -> bool:
        if node.type == "symlink":
            os.symlink(node.target or b"", path)
        elif node.type == "fifo":
            os.mkfifo(path, 0o600)
        elif node.type in ("chardev", "blockdev") and self.is_root:
            kind = stat.S_IFCHR if node.type == "chardev" else stat.S_IFBLK
            os.mknod(path, kind | 0o600, node.rdev)
        else:
            why = "needs root" if node.type != "socket" else "sockets are not restored"
            self.skipped.append(f"{_text(rel)} ({node.type}: {why})")
            return False
        return True

    def set_meta(
        self, path: bytes, node: Node, fd: int | None = None, *, mode_set: bool = False
    ) -> None:
        """Owner (root only; not for a file this restore created when it already has
        that owner, ``new_owner``), mode (unless ``mode_set``: created with it), xattrs,
        then mtime (last: the others touch ctime only)."""
        link = node.type == "symlink"
        where: int | bytes = fd if fd is not None else path
        if self.is_root:
            if fd is not None:
                if (node.uid, node.gid) != self.new_owner:
                    os.fchown(fd, node.uid, node.gid)
            else:
                os.chown(path, node.uid, node.gid, follow_symlinks=False)
        if not link and not mode_set:
            os.chmod(where, node.mode)
        for name, value in node.xattrs:
            try:
                if fd is not None:
                    os.setxattr(fd, name, value)
                else:
                    os.setxattr(path, name, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    raise
        times = (node.mtime_ns, node.mtime_ns)
        if fd is not None:
            os.utime(fd, ns=times)
        else:
            os.utime(path, ns=times, follow_symlinks=False)


class _Feed:
    """Hands files to the restore threads in runs; :meth:`put` may be called again and
    again (a streamed restore). It waits only while more than ``STREAM_FILES`` files
    and ``4 * workers`` runs are queued: a streamed restore's walk then gathers the
    next window of files while the threads write this one. (Waiting at ``4 * workers``
    runs, a few hundred small files, left the threads idle while the walk decoded the
    trees for the next 4,096 files: py-spy saw each thread waiting for work a tenth of
    the full set's restore.) Memory stays bounded: a queued run holds nodes, not data."""

    def __init__(self, restorer: _Restorer, workers: int) -> None:
        self._restorer = restorer
        self._window = 4 * max(1, workers)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="sv-restore")
        self._pending: collections.deque[tuple[Future[None], int]] = collections.deque()
        self._queued = 0  # files in the pending runs

    def __enter__(self) -> _Feed:
        return self

    def put(self, files: list[tuple[bytes, Node]]) -> None:
        for run in _runs(self._restorer.order(files)):
            while len(self._pending) >= self._window and self._queued >= STREAM_FILES:
                future, count = self._pending.popleft()
                self._queued -= count
                future.result()
            self._pending.append((self._pool.submit(self._restorer._restore_run, run), len(run)))
            self._queued += len(run)

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                for future, _count in self._pending:
                    future.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            if self._restorer.runs is not None:
                self._restorer.runs.close()  # the threads' pack files


RUN_FILES = 64
RUN_BYTES = 8 * 1024 * 1024
RUN_MAX_FILES = 4 * RUN_FILES
STREAM_FILES = 4096
"""A streamed restore sorts this many files at a time into pack order."""


def _runs(order: list[tuple[bytes, Node]]) -> Iterator[list[tuple[bytes, Node]]]:
    """Consecutive files (in pack order) grouped into tasks. A run ends at ``RUN_BYTES``;
    past ``RUN_FILES`` files it ends where the next file is in another directory (at
    ``RUN_MAX_FILES`` at the latest), so the two threads, taking consecutive runs, create
    files in different directories: creating a file holds its directory's lock, and two
    threads creating in one directory wait for each other (the kernel spinning on that
    lock was a tenth of a restore's CPU in perf)."""
    run: list[tuple[bytes, Node]] = []
    nbytes = 0
    folder = b""
    for item in order:
        rel = item[0]
        cut = rel.rfind(b"/")
        here = rel[:cut] if cut >= 0 else b""
        if run and (len(run) >= RUN_MAX_FILES or (len(run) >= RUN_FILES and here != folder)):
            yield run
            run, nbytes = [], 0
        folder = here
        run.append(item)
        nbytes += item[1].size
        if nbytes >= RUN_BYTES:
            yield run
            run, nbytes = [], 0
    if run:
        yield run


@gc_tuning.fewer_collections()
def restore(
    repo: BlobSource,
    rp_id: str,
    target: str | bytes | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    clock: Clock | None = None,
    workers: int = 2,
) -> RestoreResult:
    """Restore recovery point ``rp_id`` (or the ``include`` paths in it) into ``target``."""
    malloc_tuning.fix_mmap_threshold()
    includes = [_split(i) for i in include]
    if any(not inc for inc in includes):
        includes = []  # "/" means everything
    manifest = _manifest(repo, rp_id)
    target_path = os.path.abspath(os.fsencode(target))
    if not includes and _empty(target_path):
        return _restore_streamed(repo, manifest, target_path, overwrite, progress, clock, workers)
    planner = _Planner(repo, includes)
    planner.walk(manifest.tree, (), not includes)
    missing = [b"/".join(inc) for inc in includes if inc not in planner.matched]
    if missing:
        names = ", ".join(_text(m) for m in missing)
        raise core_errors.NotFound(kind="path in the recovery point", name=names)
    plan = planner.plan
    meter = ProgressMeter(
        "restore",
        progress,
        clock or SystemClock(),
        files_total=len(plan.files) + len(plan.links) + len(plan.others),
        bytes_total=sum(n.size for _, n in plan.files),
    )
    r = _Restorer(repo, target_path, overwrite, meter)
    r.check_conflicts(plan)
    r.make_dirs(plan)
    r.restore_files(plan, workers)
    r.restore_links(plan)
    r.restore_others(plan)
    r.finish_dirs(plan)
    if not includes and manifest.root is not None:
        r.finish_root(node_from_dict(manifest.root))
    meter.finish()
    return RestoreResult(r.files, r.bytes, r.errors, r.skipped)


def _empty(target: bytes) -> bool:
    """Whether ``target`` does not exist or is an empty directory (nothing to conflict)."""
    try:
        with os.scandir(target) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _restore_streamed(
    repo: BlobSource,
    manifest: snapshots.Manifest,
    target: bytes,
    overwrite: bool,
    progress: ProgressCallback | None,
    clock: Clock | None,
    workers: int,
) -> RestoreResult:
    """A whole recovery point into a new or empty directory, where nothing can conflict:
    trees are read as the restore goes (directories before what they hold), files are
    sorted into pack order ``STREAM_FILES`` at a time, and only directories, hard links
    and special files are kept until the end; a plan of every node took 150 MiB for
    the benchmark's 127,000 files. A damaged root tree fails before anything is written;
    a damaged subtree is an error naming its directory, and the rest is restored."""
    summary = manifest.summary
    meter = ProgressMeter(
        "restore",
        progress,
        clock or SystemClock(),
        files_total=summary.files_new
        + summary.files_changed
        + summary.files_unchanged
        + summary.other,
        bytes_total=summary.total_size,
    )
    r = _Restorer(repo, target, overwrite, meter)
    root = load_tree(repo, manifest.tree, b"")
    trees: BlobReader = repo if r.runs is None else _TreeReads(r.runs)
    os.makedirs(target, exist_ok=True)
    r.create_mode = _create_mask(target)
    r.learn_owner = r.is_root
    plan = _Plan()
    window: list[tuple[bytes, Node]] = []
    processes = restore_workers.wanted(repo, meter.files_total or 0)
    feed: _Feed | restore_workers.ProcessFeed
    feed = restore_workers.ProcessFeed(r, processes) if processes else _Feed(r, workers)
    with feed:
        for rel, node in _tree_order(trees, root, r):
            if node.type == "dir":
                r.make_dir(rel, fresh=True)
                plan.dirs.append((rel, node))
            elif node.link_key is not None and node.link_key in plan.first_link:
                plan.links.append((rel, node, plan.first_link[node.link_key]))
            elif node.type == "file":
                if node.link_key is not None:
                    plan.first_link[node.link_key] = rel
                window.append((rel, node))
                if len(window) >= STREAM_FILES:
                    feed.put(window)
                    window = []
            else:
                plan.others.append((rel, node))
        feed.put(window)
    r.restore_links(plan)
    r.restore_others(plan)
    r.finish_dirs(plan)
    if manifest.root is not None:
        r.finish_root(node_from_dict(manifest.root))
    meter.finish()
    return RestoreResult(r.files, r.bytes, r.errors, r.skipped)


def _create_mask(target: bytes) -> int:
    """The permission bits a file created under ``target`` keeps (``0o777`` less the
    process umask, read from /proc so no other thread sees a changed umask); 0, so every
    file gets an fchmod, when that is unknown or ``target`` has a default ACL (which
    decides new files' modes instead of the umask)."""
    try:
        if os.getxattr(target, "system.posix_acl_default"):
            return 0
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return 0
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return 0o777 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _TreeReads:
    """A streamed restore's trees read on its walking thread through the restore's own
    pack reads (:mod:`restore_reads`: pack files kept open, one kept buffer), not
    ``Repository.get_blob``'s open, read and close of a pack file for every tree (strace
    of the full set: 16,600 trees, three system calls each). Damage and a missing pack
    raise IntegrityError as ``get_blob`` does."""

    def __init__(self, runs: restore_reads.RunReader) -> None:
        self._get = runs.run(()).get

    def get_blob(self, blob_id: bytes) -> bytes:
        data = self._get(blob_id)
        return data if isinstance(data, bytes) else bytes(data)


def _tree_order(repo: BlobReader, root: list[Node], r: _Restorer) -> Iterator[tuple[bytes, Node]]:
    """Every entry below ``root`` with its path; a directory comes before its contents.
    Only the tree being listed is held; deeper ones are ids until their turn."""
    nodes: list[Node] = root
    stack: list[tuple[bytes, str]] = []
    prefix = b""
    while True:
        for node in nodes:
            rel = prefix + b"/" + node.name if prefix else node.name
            yield rel, node
            if node.type == "dir" and node.subtree is not None:
                stack.append((rel, node.subtree))
        while True:
            if not stack:
                return
            prefix, tree_id = stack.pop()
            try:
                nodes = load_tree(repo, tree_id, prefix)
                break
            except errors.IntegrityError as exc:
                r.error(prefix, f"not restored: {exc}")
