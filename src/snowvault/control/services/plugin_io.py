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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, TypeVar

from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs
from snowvault.control.services import vaults
from snowvault.control.services.base import Deps, JobControl
from snowvault.core.errors import NotFound
from snowvault.engine import archiver, locks, restorer
from snowvault.engine import progress as engine_progress
from snowvault.engine.repository import Repository
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


def resource_of(row: Mapping[str, Any]) -> base.Resource:
    """A catalog resource row as a plugin sees it."""
    return base.Resource(row["arn"], row["resource_type"], row["name"], row["source"])


def point_resource(rp: jobs.RecoveryPoint, resource: Mapping[str, Any] | None) -> base.Resource:
    """The resource a recovery point was made of; its source is empty once the resource
    was deregistered (``resource`` None)."""
    source = resource["source"] if resource is not None else ""
    return base.Resource(rp.resource_arn, rp.resource_type, rp.resource_name or "", source)


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
        """Plugin facts for the manifest's ``plugin`` metadata (before the one write)."""
        if self._result is not None:
            raise RuntimeError("Sink.note must come before the point's one write")
        self._metadata["plugin"] = {**self._metadata.get("plugin", {}), **dict(info)}

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
        """Several named entries as the point's tree (the engine writer lands next)."""
        raise NotImplementedError("multi-entry recovery points are not written yet")

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

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader of entry ``path`` (lands with the multi-entry writer)."""
        raise NotImplementedError("streaming entry reads are not implemented yet")

    def entries(self) -> list[base.EntryInfo]:
        """Every file entry of the point (lands with the multi-entry writer)."""
        raise NotImplementedError("entry listings are not implemented yet")

    def info(self) -> Mapping[str, Any]:
        """What the backup's plugin noted (lands with the multi-entry writer)."""
        raise NotImplementedError("plugin notes are not read back yet")

    def _add(self, more: restorer.RestoreResult) -> None:
        r = self.result
        self.result = restorer.RestoreResult(
            r.files + more.files,
            r.bytes + more.bytes,
            [*r.errors, *more.errors],
            [*r.skipped, *more.skipped],
        )


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
