"""Backup of one byte stream (``pg_dump | snowvault repo backup-stream``) as a tree
holding one file, of several named entries (streams or host files, nested paths, per-entry
metadata) as one tree, and the two steps every backup ends with (:func:`stored_bytes`,
:func:`commit`), which the directory archiver shares.

    result = backup_stream(repo, "dump.sql", sys.stdin.buffer, now=clock.now())
    result.rp_id, result.manifest.summary.bytes_read
    backup_entries(repo, [StreamEntry("db/app.sql", open=lambda: open("/tmp/d", "rb")),
                          StreamEntry("disk.img", host_path="/dev/vg0/disk")], now=now)

A multi-entry point's manifest has ``kind`` "entries"; entry metadata lives in its file
nodes as ``user.snowvault.<key>`` xattrs, a fingerprint in the node's ``extra``. A host
file is read by its data runs (SEEK_DATA/SEEK_HOLE): holes, and all-zero chunks, are stored
as holes (``[null, length]``), as the directory archiver stores sparse files.

Knows nothing of the control plane; never prints (progress goes to a callback).
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from snowvault.core import errors as core_errors
from snowvault.core.clock import Clock, SystemClock
from snowvault.engine import errors, snapshots
from snowvault.engine.chunker import Chunker, ChunkerParams
from snowvault.engine.progress import ProgressCallback, ProgressMeter
from snowvault.engine.tree import Chunk, Node, decode_tree, encode_tree


class StreamStore(Protocol):
    """What a stream backup needs of a repository."""

    @property
    def chunker_params(self) -> ChunkerParams: ...
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...
    def add_blob_async(self, kind: Any, data: bytes | memoryview) -> Future[bytes]: ...
    def save_manifest(self, manifest: dict[str, Any]) -> str: ...


class EntryStore(StreamStore, Protocol):
    """What a multi-entry backup needs: a stream store that reads its parent point."""

    def get_blob(self, blob_id: bytes) -> bytes: ...
    def load_manifest(self, rp_id: str) -> dict[str, Any]: ...


def stored_bytes(repo: object) -> int:
    """Bytes the repository has stored so far (0 for a store that does not count)."""
    return int(getattr(repo, "stats_stored_bytes", 0))


def commit(
    repo: StreamStore, manifest: snapshots.Manifest, meter: ProgressMeter
) -> snapshots.BackupResult:
    """Write the manifest (the commit point of a recovery point) and finish the meter."""
    rp_id = repo.save_manifest(manifest.to_dict())
    meter.finish()
    return snapshots.BackupResult(rp_id, manifest)


def backup_stream(
    repo: StreamStore,
    name: str,
    stream: BinaryIO,
    *,
    now: datetime,
    parent: str | None = None,
    progress: ProgressCallback | None = None,
    hostname: str | None = None,
    tags: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    clock: Clock | None = None,
    mode: int = 0o600,
) -> snapshots.BackupResult:
    """Back up a byte stream (``pg_dump | snowvault ...``) as a tree holding one file."""
    raw_name = os.fsencode(name)
    if not raw_name or b"/" in raw_name or raw_name in (b".", b".."):
        raise core_errors.InvalidInput(detail=f"bad stream name {name!r}")
    meter = ProgressMeter("backup", progress, clock or SystemClock())
    stored_before = stored_bytes(repo)
    parts: list[tuple[Future[bytes], int]] = []
    total = 0
    for view in Chunker(repo.chunker_params).chunks(stream):
        data = bytes(view)
        parts.append((repo.add_blob_async("data", data), len(data)))
        total += len(data)
        meter.advance(nbytes=len(data), current=name)
    mtime_ns = int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
    node = Node(
        name=raw_name,
        type="file",
        mode=mode,
        uid=os.getuid(),
        gid=os.getgid(),
        mtime_ns=mtime_ns,
        size=total,
        content=tuple((ref.result().hex(), n) for ref, n in parts),
    )
    tree_id = repo.add_blob("tree", encode_tree([node])).hex()
    meter.advance(files=1)
    summary = snapshots.Summary(
        files_new=1,
        bytes_read=total,
        bytes_added=stored_bytes(repo) - stored_before,
        total_size=total,
        duration_seconds=meter.elapsed(),
    )
    manifest = snapshots.Manifest(
        time=now,
        hostname=hostname if hostname is not None else socket.gethostname(),
        paths=[name],
        kind="stream",
        tree=tree_id,
        parent=parent,
        tags=dict(tags or {}),
        summary=summary,
        metadata=dict(metadata or {}),
    )
    return commit(repo, manifest, meter)


# ---------------------------------------------------------------- several entries

XATTR_PREFIX = "user.snowvault."
"""Per-entry metadata ``meta[k] = v`` is stored as the node's xattr ``user.snowvault.k``."""

FINGERPRINT = "fingerprint"
"""The node ``extra`` key holding an entry's fingerprint (reused by the next backup)."""

_MAX_XATTR_NAME = 255


@dataclass(frozen=True)
class StreamEntry:
    """One file of a multi-entry point: ``path`` relative and ``/``-separated; its body
    from ``open()`` (a context manager giving a binary stream) or read from the host file
    or device ``host_path`` (the resolved path its caller checked; a symlink is refused),
    sparse-aware. ``fingerprint``: an identity of the body; when the parent point has the
    same path with the same fingerprint, its content is reused and the body never read."""

    path: str
    open: Callable[[], AbstractContextManager[BinaryIO]] | None = None
    host_path: str | None = None
    mode: int = 0o600
    mtime_ns: int | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str | None = None
    size: int | None = None


def entry_parts(path: str) -> tuple[bytes, ...]:
    """The raw name components of an entry path; InvalidInput unless it is relative,
    ``/``-separated, without empty, ``.`` or ``..`` components or NUL bytes.

    >>> entry_parts("objects/a b/c.json")
    (b'objects', b'a b', b'c.json')
    """
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise core_errors.InvalidInput(
            detail=f"entry path {path!r} must be relative, '/'-separated, without . or .."
        )
    return tuple(p.encode("utf-8", "surrogateescape") for p in parts)


def meta_xattrs(meta: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """``meta`` as sorted ``user.snowvault.<key>`` xattrs.

    >>> meta_xattrs({"content-type": "text/plain"})
    ((b'user.snowvault.content-type', b'text/plain'),)
    """
    out = []
    for key, value in meta.items():
        name = (XATTR_PREFIX + str(key)).encode("utf-8", "surrogateescape")
        if not key or "\x00" in key or len(name) > _MAX_XATTR_NAME or "\x00" in str(value):
            raise core_errors.InvalidInput(detail=f"bad entry metadata key {key!r}")
        out.append((name, str(value).encode("utf-8", "surrogateescape")))
    return tuple(sorted(out))


def meta_of(xattrs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The entry metadata in a node's xattrs (the inverse of :func:`meta_xattrs`)."""
    prefix = XATTR_PREFIX.encode()
    return {
        k[len(prefix) :].decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
        for k, v in xattrs
        if k.startswith(prefix)
    }


class _Range(io.RawIOBase):
    """``length`` bytes of ``fd`` from ``offset`` (pread: the fd's position is not used)."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd, self._pos, self._end = fd, offset, offset + length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._end - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def segments(fd: int, size: int) -> Iterator[tuple[int, int, bool]]:
    """``(offset, length, is_data)`` runs of the open file ``fd`` of ``size`` bytes, found
    with SEEK_DATA/SEEK_HOLE; where those are not supported (some file systems, block
    devices) the whole file is one data run."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            yield (offset, size - offset, exc.errno != errno.ENXIO)  # ENXIO: a final hole
            return
        start = min(start, size)
        if start > offset:
            yield (offset, start - offset, False)
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        yield (start, end - start, True)
        offset = end


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` (a file that shrank meanwhile ends short)."""
    parts: list[bytes] = []
    done = 0
    while done < length:
        piece = os.pread(fd, length - done, offset + done)
        if not piece:
            break
        parts.append(piece)
        done += len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _host_size(fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if stat.S_ISBLK(st.st_mode):
        return os.lseek(fd, 0, os.SEEK_END)
    raise core_errors.InvalidInput(detail="a host entry must be a regular file or block device")


class _EntryWriter:
    """Builds the nested tree of a multi-entry point: files as they come, directories
    (mode 0700) encoded bottom-up at the end."""

    def __init__(self, repo: EntryStore, meter: ProgressMeter, parent_tree: str | None) -> None:
        self.repo, self.meter = repo, meter
        self.chunker = Chunker(repo.chunker_params)
        self.root: dict[bytes, Any] = {}
        self.parent_tree = parent_tree
        self._parent_dirs: dict[tuple[bytes, ...], dict[bytes, Node]] = {}
        self.files = self.reused = self.bytes_read = self.total = 0

    def add(self, entry: StreamEntry, now_ns: int) -> None:
        parts = entry_parts(entry.path)
        folder = self.root
        for name in parts[:-1]:
            sub = folder.setdefault(name, {})
            if not isinstance(sub, dict):
                raise core_errors.InvalidInput(detail=f"entry {entry.path!r} is under a file")
            folder = sub
        if parts[-1] in folder:
            raise core_errors.InvalidInput(detail=f"entry path {entry.path!r} given twice")
        node = Node(
            name=parts[-1],
            type="file",
            mode=entry.mode & 0o7777,
            uid=os.getuid(),
            gid=os.getgid(),
            mtime_ns=entry.mtime_ns if entry.mtime_ns is not None else now_ns,
            xattrs=meta_xattrs(entry.meta),
        )
        if entry.fingerprint is not None:
            node.extra[FINGERPRINT] = entry.fingerprint
        folder[parts[-1]] = node  # taken before reading: a second entry of the path fails
        previous = self._previous(parts, entry.fingerprint)
        if previous is not None:
            node.content, node.size = previous.content, previous.size
            self.reused += 1
            self.meter.advance(files=1, nbytes=previous.size, current=entry.path)
        else:
            node.content = self._read(entry)
            node.size = sum(n for _, n in node.content)
            self.meter.advance(files=1, current=entry.path)
        self.files += 1
        self.total += node.size

    def _previous(self, parts: tuple[bytes, ...], fingerprint: str | None) -> Node | None:
        """The parent point's node at ``parts`` when it has the same fingerprint."""
        if fingerprint is None or self.parent_tree is None:
            return None
        nodes = self._parent_dir(parts[:-1])
        old = nodes.get(parts[-1])
        if old is None or old.type != "file" or old.extra.get(FINGERPRINT) != fingerprint:
            return None
        return old

    def _parent_dir(self, parts: tuple[bytes, ...]) -> dict[bytes, Node]:
        if parts in self._parent_dirs:
            return self._parent_dirs[parts]
        tree_id = self.parent_tree
        if parts:
            above = self._parent_dir(parts[:-1]).get(parts[-1])
            tree_id = above.subtree if above is not None and above.type == "dir" else None
        nodes: dict[bytes, Node] = {}
        if tree_id is not None:
            try:
                raw = self.repo.get_blob(bytes.fromhex(tree_id))
                nodes = {n.name: n for n in decode_tree(raw, f"tree {tree_id}")}
            except errors.EngineError:
                nodes = {}  # a damaged parent only costs a full read
        self._parent_dirs[parts] = nodes
        return nodes

    def _read(self, entry: StreamEntry) -> tuple[Chunk, ...]:
        if entry.host_path is not None:
            return self._read_host(entry.host_path, entry.path)
        if entry.open is None:
            raise core_errors.InvalidInput(detail=f"entry {entry.path!r} has no body")
        with entry.open() as body:
            return _resolved(self._submit(self.chunker.chunks(body), entry.path, holes=False))

    def _read_host(self, host_path: str, label: str) -> tuple[Chunk, ...]:
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        try:
            size = _host_size(fd)
            # the uploads of every data run are awaited once, at the end of the file; a run
            # that fits in one chunk's bound is read whole and cut in memory: the stream
            # chunker sets up a buffer of the chunk bound for every stream, which for an
            # image of thousands of small runs between holes, backed up in a worker thread
            # (whose large allocations are fresh mappings each time), was most of the time
            # (25.7 s through the server against 4.3 s in one process, docs/benchmarks.md)
            parts: list[tuple[Future[bytes] | None, int]] = []
            small = self.chunker.params.max_size
            for offset, length, is_data in segments(fd, size):
                if not is_data:
                    parts.append((None, length))
                    self.meter.advance(nbytes=length, current=label)
                    continue
                if length <= small:
                    data = _pread_all(fd, offset, length)
                    parts.extend(
                        self._submit(self.chunker.chunks_of_bytes(data), label, holes=True)
                    )
                    continue
                with io.BufferedReader(_Range(fd, offset, length), 1024 * 1024) as body:
                    parts.extend(self._submit(self.chunker.chunks(body), label, holes=True))
            return _resolved(parts)
        finally:
            os.close(fd)

    def _submit(
        self, views: Iterable[memoryview], label: str, *, holes: bool
    ) -> list[tuple[Future[bytes] | None, int]]:
        """The chunks, handed to the repository's background uploads (all-zero chunks of a
        host file become holes, None); the caller resolves the futures."""
        pending: list[tuple[Future[bytes] | None, int]] = []
        for view in views:
            n = len(view)
            data = bytes(view)
            if holes and data.count(0) == n:
                pending.append((None, n))
            else:
                pending.append((self.repo.add_blob_async("data", data), n))
                self.bytes_read += n
            self.meter.advance(nbytes=n, current=label)
        return pending

    def finish(self, now_ns: int) -> tuple[str, int]:
        """The root tree id and the number of directories."""
        return self._tree(self.root, now_ns)

    def _tree(self, folder: dict[bytes, Any], now_ns: int) -> tuple[str, int]:
        nodes: list[Node] = []
        dirs = 0
        for name, item in folder.items():
            if isinstance(item, Node):
                nodes.append(item)
                continue
            subtree, below = self._tree(item, now_ns)
            dirs += below + 1
            nodes.append(
                Node(
                    name=name,
                    type="dir",
                    mode=0o700,
                    uid=os.getuid(),
                    gid=os.getgid(),
                    mtime_ns=now_ns,
                    subtree=subtree,
                )
            )
        return self.repo.add_blob("tree", encode_tree(nodes)).hex(), dirs


def _resolved(pending: list[tuple[Future[bytes] | None, int]]) -> tuple[Chunk, ...]:
    """Wait for the uploads: each chunk's blob id (None for a hole) and its size."""
    return tuple((None if ref is None else ref.result().hex(), n) for ref, n in pending)


def backup_entries(
    repo: EntryStore,
    entries: Iterable[StreamEntry],
    *,
    now: datetime,
    parent: str | None = None,
    progress: ProgressCallback | None = None,
    bytes_total: int | None = None,
    hostname: str | None = None,
    tags: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> snapshots.BackupResult:
    """Back up several named entries as one point's tree (nested paths become nested
    directories; entry metadata becomes ``user.snowvault.*`` xattrs). Incremental: every
    chunk already stored is deduplicated, and an entry whose fingerprint matches the
    parent point's entry of the same path keeps that content without being read. An
    entry that cannot be read raises (nothing is committed)."""
    meter = ProgressMeter("backup", progress, clock or SystemClock(), bytes_total=bytes_total)
    stored_before = stored_bytes(repo)
    parent_tree = None
    if parent is not None:
        parent_tree = snapshots.Manifest.from_dict(repo.load_manifest(parent)).tree
    writer = _EntryWriter(repo, meter, parent_tree)
    now_ns = int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
    for entry in entries:
        writer.add(entry, now_ns)
    tree_id, dirs = writer.finish(now_ns)
    summary = snapshots.Summary(
        files_new=writer.files - writer.reused,
        files_unchanged=writer.reused,
        dirs=dirs,
        bytes_read=writer.bytes_read,
        bytes_added=stored_bytes(repo) - stored_before,
        total_size=writer.total,
        duration_seconds=meter.elapsed(),
    )
    manifest = snapshots.Manifest(
        time=now,
        hostname=hostname if hostname is not None else socket.gethostname(),
        paths=sorted(n.decode("utf-8", "surrogateescape") for n in writer.root),
        kind="entries",
        tree=tree_id,
        parent=parent,
        tags=dict(tags or {}),
        summary=summary,
        metadata=dict(metadata or {}),
    )
    return commit(repo, manifest, meter)
