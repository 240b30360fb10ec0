"""Restores on the agent's host: the engine's restorer writes the point's files here,
reading trees and chunks from the server (``AgentReadBlobs``), each sealed under the
restore job's data key.

    source = RemoteSource(api, job_id, job_key, manifest)
    plugin.restore(RestoreRequest(resource, metadata, policy, source, progress, job_id=job_id))

The request carries the restore job's id (the claim's ``JobId``, the same on every
attempt): the Directory plugin marks its target with it, so an attempt after a killed
one finishes that attempt's partial restore (see :mod:`snowvault.plugins.directory`).

:class:`RemoteSource` is the whole plugin Source: a directory point written by the
restorer, a dump read whole (``read_file``) or streamed (``open``, blob by blob, holes
as zeros), the entries of a multi-entry point and the plugin's notes (``info``, from the
manifest the claim carried).

Abuse cases: the server names the target (``Metadata``); the plugin judges it by the
agent's own ``--allow-path`` and ``--allow-network`` rules right before it writes,
whatever the server checked. A blob that does not open under the job key and the blob's
id is refused (the server or the wire changed it), and a blob whose length differs from
its tree's is an integrity error.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO

from snowvault import plugins
from snowvault.agent.client import AgentApi
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.engine import compression, point_reading, restorer, snapshots, stream_backup
from snowvault.engine import errors as engine_errors
from snowvault.engine import progress as engine_progress
from snowvault.engine.crypto import agent_blobs, primitives
from snowvault.engine.tree import Chunk, Node

READ_BUFFER = 256 * 1024
PREFETCH_IDS = 16
PREFETCH_BYTES = 8 * 1024 * 1024
"""A streamed entry's next blobs are asked in one AgentReadBlobs call, up to this many
ids and this much data (the server serves at most 64 ids a call)."""


class RemoteBlobs:
    """:class:`snowvault.engine.restorer.BlobSource` over ``AgentReadBlobs``: the one
    point the job restores (its manifest came with the claim)."""

    def __init__(
        self, api: AgentApi, job_id: str, job_key: bytes, manifest: Mapping[str, Any]
    ) -> None:
        self._api, self._job_id, self._key = api, job_id, job_key
        self._manifest = dict(manifest)
        self.read_blobs = 0

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        return dict(self._manifest)

    def blob_location(self, blob_id: bytes) -> tuple[str, int, int]:
        raise engine_errors.EngineError("blob locations are not known on an agent")

    def get_blob(self, blob_id: bytes) -> bytes:
        return self.get_blobs([blob_id])[blob_id]

    def get_blobs(self, blob_ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """Several blobs in one call (ids of this job's point; each opened under the
        job key and its id): id -> data."""
        wanted = list(dict.fromkeys(blob_ids))
        doc = self._api.call(
            "AgentReadBlobs", {"JobId": self._job_id, "BlobIds": [b.hex() for b in wanted]}
        )
        answered = {str(item.get("BlobId")): item.get("Data") for item in doc.get("Blobs", [])}
        out: dict[bytes, bytes] = {}
        for blob_id in wanted:
            data = answered.get(blob_id.hex())
            if data is None:
                raise InvalidInput(detail=f"the server did not answer blob {blob_id.hex()}")
            sealed = base64.b64decode(str(data))
            try:
                plain = agent_blobs.open_blob(self._key, self._job_id, "data", blob_id, sealed)
            except primitives.AuthenticationFailed:
                raise InvalidInput(
                    detail=f"blob {blob_id.hex()} was not sealed for this job"
                ) from None
            self.read_blobs += 1
            out[blob_id] = compression.unpack(plain)
        return out


class RemoteSource:
    """The plugin's :class:`~snowvault.plugins.base.Source` of a restore on the agent,
    over :class:`RemoteBlobs`; :attr:`result` sums what was restored."""

    def __init__(self, blobs: RemoteBlobs) -> None:
        self.blobs = blobs
        self.result = restorer.RestoreResult(files=0, bytes=0)

    def to_directory(
        self,
        target: str,
        *,
        include: Sequence[str],
        overwrite: bool,
        progress: plugins.base.ProgressCallback,
    ) -> None:
        def forward(p: engine_progress.Progress) -> None:
            progress(plugins.base.Progress(p.bytes_done, p.bytes_total))

        self._add(
            restorer.restore(
                self.blobs, "agent", target, include=include, overwrite=overwrite, progress=forward
            )
        )

    def _root(self) -> str:
        return restorer.root_tree(self.blobs, "agent")

    def read_file(self, name: str) -> bytes:
        raw = name.encode("utf-8", "surrogateescape")
        for node in restorer.load_tree(self.blobs, self._root(), b""):
            if node.name == raw and node.type == "file":
                with self._reader(node) as reader:
                    return reader.read()
        raise NotFound(kind="file in the recovery point", name=name)

    @contextmanager
    def _reader(self, node: Node) -> Iterator[BinaryIO]:
        raw = _ContentReader(self.blobs, node.content)
        with io.BufferedReader(raw, buffer_size=READ_BUFFER) as reader:
            yield reader
        self._add(restorer.RestoreResult(1, raw.delivered))

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader of entry ``path`` (one blob fetched at a time)."""
        return self._reader(self._find(path))

    def _find(self, path: str) -> Node:
        return point_reading.find_file(self.blobs, self._root(), path)

    def entries(self) -> list[plugins.base.EntryInfo]:
        """Every file entry of the point with its metadata, in path order."""
        out: list[plugins.base.EntryInfo] = []
        stack = [(self._root(), "")]
        while stack:
            tree_id, prefix = stack.pop()
            for node in restorer.load_tree(self.blobs, tree_id, prefix.encode()):
                name = prefix + node.name.decode("utf-8", "surrogateescape")
                if node.type == "dir" and node.subtree is not None:
                    stack.append((node.subtree, name + "/"))
                elif node.type == "file":
                    meta = stream_backup.meta_of(node.xattrs)
                    out.append(plugins.base.EntryInfo(name, node.size, meta))
        return sorted(out, key=lambda e: e.path.encode("utf-8", "surrogateescape"))

    def info(self) -> Mapping[str, Any]:
        """What the backup's plugin noted ({} if nothing), from the claimed manifest."""
        doc = snapshots.Manifest.from_dict(self.blobs.load_manifest("agent"))
        plugin = doc.metadata.get("plugin")
        return dict(plugin) if isinstance(plugin, dict) else {}

    def _add(self, more: restorer.RestoreResult) -> None:
        r = self.result
        self.result = restorer.RestoreResult(
            r.files + more.files,
            r.bytes + more.bytes,
            [*r.errors, *more.errors],
            [*r.skipped, *more.skipped],
        )


class _ContentReader(point_reading.ChunkStream):
    """A file node's content fetched through AgentReadBlobs: its next blobs fetched
    together (:data:`PREFETCH_IDS`, :data:`PREFETCH_BYTES`)."""

    def __init__(self, blobs: RemoteBlobs, content: Sequence[Chunk]) -> None:
        super().__init__(content)
        self._blobs = blobs
        self._ahead: dict[bytes, bytes] = {}

    def fetch(self, blob_id: bytes) -> bytes:
        """The blob, from what was fetched ahead, else with the next ones in one call."""
        if blob_id not in self._ahead:
            batch, size = [blob_id], 0
            for later, length in self.content[self.next :]:
                if len(batch) >= PREFETCH_IDS or size + length > PREFETCH_BYTES:
                    break
                if later is not None and bytes.fromhex(later) not in batch:
                    batch.append(bytes.fromhex(later))
                    size += length
            self._ahead = self._blobs.get_blobs(batch)
        return self._ahead.pop(blob_id)
