"""Where plugins meet the engine: the Sink a backup writes into and the Source a restore
reads from, both over a vault's repository, plus the progress adapters to a job.

The plugin decides what to read or write and checks its host paths first; the sink or
source opens the repository and takes the shared repository lock only when the plugin
writes or reads (so a refused path never opens a vault), and keeps the engine's result
for the services to record. Plugins see neither the engine nor the catalog.

    sink = plugin_io.EngineSink(deps, vault, parent=rp_id, tags={}, metadata={...})
    plugin.backup(base.BackupRequest(resource, deps.path_policy, sink, report))
    sink.result                       # archiver.BackupResult: rp_id, manifest

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO, TypeVar

from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs
from snowvault.control.services import resources, vaults
from snowvault.control.services.base import Deps, JobControl
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.engine import archiver, locks, point_reading, restorer, snapshots, stream_backup
from snowvault.engine import progress as engine_progress
from snowvault.engine.repository import Repository
from snowvault.engine.tree import Chunk
from snowvault.plugins import base

T = TypeVar("T")

PRUNE_WAIT_SECONDS = 600.0
"""How long a backup or restore waits for a prune holding the vault's exclusive lock
(the sweeps prune right after expiry, often at the hour scheduled backups start) before
the job fails with 'repository is locked'."""


def _engine_progress(report: base.ProgressCallback) -> engine_progress.ProgressCallback:
    def forward(p: engine_progress.Progress) -> None:
        report(base.Progress(p.bytes_done, p.bytes_total))

    return forward


def _in_repository(deps: Deps, vault: Record, work: Callable[[Repository], T]) -> T:
    with (
        vaults.open_repository(deps, vault) as repo,
        locks.locked_repository(repo, deps.clock, exclusive=False, wait_seconds=PRUNE_WAIT_SECONDS),
    ):
        return work(repo)


def resource_of(row: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> base.Resource:
    """A catalog resource row as a plugin sees it: with its properties, and the
    ``secrets`` the worker unsealed (``services.resources.worker_secrets``; only there)."""
    return base.Resource(
        row["arn"],
        row["resource_type"],
        row["name"],
        row["source"],
        dict(row.get("properties") or {}),
        dict(secrets or {}),
    )


def point_resource(
    rp: jobs.RecoveryPoint,
    resource: Mapping[str, Any] | None,
    secrets: Mapping[str, str] | None = None,
) -> base.Resource:
    """The resource a recovery point was made of; its source is empty and it has no
    properties once the resource was deregistered (``resource`` None)."""
    source = resource["source"] if resource is not None else ""
    properties = dict(resource.get("properties") or {}) if resource is not None else {}
    return base.Resource(
        rp.resource_arn,
        rp.resource_type,
        rp.resource_name or "",
        source,
        properties,
        dict(secrets or {}) if resource is not None else {},
    )


def worker_resource(deps: Deps, row: Mapping[str, Any]) -> base.Resource:
    """The resource of a job as its plugin gets it in the worker: with its secrets
    unsealed (the one path that unseals them; see services/resources.py)."""
    return resource_of(row, resources.worker_secrets(deps, row["arn"]))


def worker_point_resource(
    deps: Deps, rp: jobs.RecoveryPoint, resource: Mapping[str, Any] | None
) -> base.Resource:
    """:func:`point_resource` for a restore in the worker: the source resource's
    secrets unsealed while it is still registered."""
    secrets = resources.worker_secrets(deps, resource["arn"]) if resource is not None else {}
    return point_resource(rp, resource, secrets)


class EngineSink:
    """A :class:`~snowvault.plugins.base.Sink` making one recovery point in ``vault``:
    incremental against ``parent`` when the repository still holds it, with the
    manifest ``tags`` and ``metadata`` the services chose."""

    def __init__(
        self,
        deps: Deps,
        vault: Record,
        *,
        parent: str | None,
        tags: Mapping[str, str],
        metadata: Mapping[str, Any],
    ) -> None:
        self._deps, self._vault, self._parent = deps, vault, parent
        self._tags, self._metadata = dict(tags), dict(metadata)
        self._result: archiver.BackupResult | None = None

    def note(self, info: Mapping[str, Any]) -> None:
        """Plugin facts for the manifest's ``plugin`` metadata (before the one write;
        JSON-able, else InvalidInput)."""
        if self._result is not None:
            raise RuntimeError("Sink.note must come before the point's one write")
        merged = {**self._metadata.get("plugin", {}), **dict(info)}
        try:
            json.dumps(merged)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(detail=f"plugin note is not JSON-able: {exc}") from None
        self._metadata["plugin"] = merged

    @property
    def result(self) -> archiver.BackupResult:
        if self._result is None:
            raise RuntimeError("the plugin wrote nothing into the backup sink")
        return self._result

    def directory(self, path: str, progress: base.ProgressCallback) -> None:
        def write(repo: Repository, parent: str | None) -> archiver.BackupResult:
            return archiver.backup_paths(
                repo,
                [path],
                now=self._deps.clock.now(),
                parent=parent,
                progress=_engine_progress(progress),
                clock=self._deps.clock,
                tags=self._tags,
                metadata=self._metadata,
            )

        self._write(write)

    def stream(self, name: str, stream: BinaryIO, progress: base.ProgressCallback) -> None:
        def write(repo: Repository, parent: str | None) -> archiver.BackupResult:
            return archiver.backup_stream(
                repo,
                name,
                stream,
                now=self._deps.clock.now(),
                parent=parent,
                progress=_engine_progress(progress),
                clock=self._deps.clock,
                tags=self._tags,
                metadata=self._metadata,
            )

        self._write(write)

    def entries(self, entries: Iterable[base.Entry], progress: base.ProgressCallback) -> None:
        """Several named entries as the point's tree (nested paths, ``meta`` as
        ``user.snowvault.*`` xattrs, host files sparse-aware, unchanged fingerprints
        reused from the parent point)."""
        known = entries if isinstance(entries, Sequence) else None
        total = None
        if known is not None and all(e.size is not None for e in known):
            total = sum(e.size or 0 for e in known)

        def write(repo: Repository, parent: str | None) -> archiver.BackupResult:
            return stream_backup.backup_entries(
                repo,
                (point_reading.stream_entry(e) for e in entries),
                now=self._deps.clock.now(),
                parent=parent,
                progress=_engine_progress(progress),
                bytes_total=total,
                clock=self._deps.clock,
                tags=self._tags,
                metadata=self._metadata,
            )

        self._write(write)

    def _write(self, write: Callable[[Repository, str | None], archiver.BackupResult]) -> None:
        if self._result is not None:
            raise RuntimeError("a plugin wrote twice into one recovery point")

        def work(repo: Repository) -> archiver.BackupResult:
            parent = self._parent if self._parent in repo.list_manifests() else None
            return write(repo, parent)

        self._result = _in_repository(self._deps, self._vault, work)


class EngineSource:
    """A :class:`~snowvault.plugins.base.Source` over engine recovery point ``rp_id`` of
    ``vault``; :attr:`result` sums what was restored."""

    def __init__(self, deps: Deps, vault: Record, rp_id: str) -> None:
        self._deps, self._vault, self._rp_id = deps, vault, rp_id
        self.result = restorer.RestoreResult(0, 0)
        self.blob_reads: list[int] = []
        """Sizes of the blobs streaming readers fetched, in order (for tests and logs)."""

    def to_directory(
        self,
        target: str,
        *,
        include: Sequence[str],
        overwrite: bool,
        progress: base.ProgressCallback,
    ) -> None:
        def work(repo: Repository) -> restorer.RestoreResult:
            return restorer.restore(
                repo,
                self._rp_id,
                target,
                include=include,
                overwrite=overwrite,
                progress=_engine_progress(progress),
                clock=self._deps.clock,
            )

        self._add(_in_repository(self._deps, self._vault, work))

    def read_file(self, name: str) -> bytes:
        def work(repo: Repository) -> bytes:
            tree = restorer.root_tree(repo, self._rp_id)
            raw = name.encode("utf-8", "surrogateescape")
            for node in restorer.load_tree(repo, tree, b""):
                if node.name == raw and node.type == "file":
                    out = io.BytesIO()
                    for blob_id, size in node.content:  # no id: a hole of zeros
                        out.write(
                            b"\0" * size
                            if blob_id is None
                            else repo.get_blob(bytes.fromhex(blob_id))
                        )
                    return out.getvalue()
            raise NotFound(kind="file in the recovery point", name=name)

        data = _in_repository(self._deps, self._vault, work)
        self._add(restorer.RestoreResult(1, len(data)))
        return data

    @contextmanager
    def _open(self, path: str) -> Iterator[BinaryIO]:
        with (
            vaults.open_repository(self._deps, self._vault) as repo,
            locks.locked_repository(
                repo, self._deps.clock, exclusive=False, wait_seconds=PRUNE_WAIT_SECONDS
            ),
        ):
            node = point_reading.find_file(repo, restorer.root_tree(repo, self._rp_id), path)
            raw = ContentReader(repo, node.content, self.blob_reads)
            with io.BufferedReader(raw, buffer_size=READ_BUFFER) as reader:
                yield reader
            self._add(restorer.RestoreResult(1, raw.delivered))

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader of entry ``path``: blob by blob (holes as zeros, never a
        whole body in memory), the vault's repository held open and locked (shared)
        while it is read. NotFound for a path that is no file of the point."""
        return self._open(path)

    def entries(self) -> list[base.EntryInfo]:
        """Every file entry of the point, depth first in tree order, with its metadata."""

        def work(repo: Repository) -> list[base.EntryInfo]:
            out: list[base.EntryInfo] = []
            stack = [(restorer.root_tree(repo, self._rp_id), "")]
            while stack:
                tree_id, prefix = stack.pop()
                found = restorer.load_tree(repo, tree_id, prefix.encode())
                for node in sorted(found, key=lambda n: n.name, reverse=True):
                    name = prefix + node.name.decode("utf-8", "surrogateescape")
                    if node.type == "dir" and node.subtree is not None:
                        stack.append((node.subtree, name + "/"))
                    elif node.type == "file":
                        meta = stream_backup.meta_of(node.xattrs)
                        out.append(base.EntryInfo(name, node.size, meta))
            return sorted(out, key=lambda e: e.path.encode("utf-8", "surrogateescape"))

        return _in_repository(self._deps, self._vault, work)

    def info(self) -> Mapping[str, Any]:
        """What the backup's plugin passed to ``Sink.note`` ({} if nothing)."""

        def work(repo: Repository) -> dict[str, Any]:
            doc = snapshots.Manifest.from_dict(repo.load_manifest(self._rp_id))
            plugin = doc.metadata.get("plugin")
            return dict(plugin) if isinstance(plugin, dict) else {}

        return _in_repository(self._deps, self._vault, work)

    def _add(self, more: restorer.RestoreResult) -> None:
        r = self.result
        self.result = restorer.RestoreResult(
            r.files + more.files,
            r.bytes + more.bytes,
            [*r.errors, *more.errors],
            [*r.skipped, *more.skipped],
        )


READ_BUFFER = 256 * 1024
"""How much a streaming entry reader asks of its blobs at a time."""


class ContentReader(point_reading.ChunkStream):
    """A file node's content read from the repository, one blob at a time (its size is
    appended to ``blob_reads``)."""

    def __init__(self, repo: Repository, content: Sequence[Chunk], blob_reads: list[int]):
        super().__init__(content)
        self._repo, self._reads = repo, blob_reads

    def fetch(self, blob_id: bytes) -> bytes:
        blob = self._repo.get_blob(blob_id)
        self._reads.append(len(blob))
        return blob


class BackupReport:
    """Plugin progress -> the job's PercentDone, BytesTransferred, BackupSizeInBytes;
    :attr:`total` is the last source size the plugin reported."""

    def __init__(self, control: JobControl) -> None:
        self.control = control
        self.total = 0

    def __call__(self, p: base.Progress) -> None:
        self.total = p.bytes_total or 0
        done = p.bytes_done
        pct = min(99.9, 100.0 * done / self.total) if self.total else 0.0
        self.control.report(
            percent_done=pct, bytes_transferred=done, backup_size_in_bytes=max(self.total, done)
        )


def restore_report(control: JobControl) -> base.ProgressCallback:
    """Plugin progress -> the restore job's PercentDone and BytesTransferred."""

    def report(p: base.Progress) -> None:
        pct = 100.0 * p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        control.report(percent_done=min(99.9, pct), bytes_transferred=p.bytes_done)

    return report
