"""Backup of one byte stream (``pg_dump | snowvault repo backup-stream``) as a tree
holding one file, and the two steps every backup ends with (:func:`stored_bytes`,
:func:`commit`), which the directory archiver shares.

    result = backup_stream(repo, "dump.sql", sys.stdin.buffer, now=clock.now())
    result.rp_id, result.manifest.summary.bytes_read

Knows nothing of the control plane; never prints (progress goes to a callback).
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import Future
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from snowvault.core import errors as core_errors
from snowvault.core.clock import Clock, SystemClock
from snowvault.engine import snapshots
from snowvault.engine.chunker import Chunker, ChunkerParams
from snowvault.engine.progress import ProgressCallback, ProgressMeter
from snowvault.engine.tree import Node, encode_tree


class StreamStore(Protocol):
    """What a stream backup needs of a repository."""

    @property
    def chunker_params(self) -> ChunkerParams: ...
    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes: ...
    def add_blob_async(self, kind: Any, data: bytes | memoryview) -> Future[bytes]: ...
    def save_manifest(self, manifest: dict[str, Any]) -> str: ...


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
