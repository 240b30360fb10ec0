"""Restores on the agent's host: the engine's restorer writes the point's files here,
reading trees and chunks from the server (``AgentReadBlobs``), each sealed under the
restore job's data key.

    source = RemoteSource(api, job_id, job_key, manifest)
    plugin.restore(RestoreRequest(resource, metadata, policy, source, progress))

Abuse cases: the server names the target (``Metadata.targetPath``); the Directory
plugin judges it by the agent's own ``--allow-path`` list (symlinks resolved) right
before it writes, whatever the server checked. A blob that does not open under the job
key and the blob's id is refused (the server or the wire changed it).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

from snowvault import plugins
from snowvault.agent.client import AgentApi
from snowvault.core.errors import InvalidInput
from snowvault.engine import compression, restorer
from snowvault.engine import errors as engine_errors
from snowvault.engine import progress as engine_progress
from snowvault.engine.crypto import agent_blobs, primitives


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
        doc = self._api.call("AgentReadBlobs", {"JobId": self._job_id, "BlobIds": [blob_id.hex()]})
        for item in doc.get("Blobs", []):
            if item.get("BlobId") == blob_id.hex():
                sealed = base64.b64decode(str(item.get("Data")))
                try:
                    plain = agent_blobs.open_blob(self._key, self._job_id, "data", blob_id, sealed)
                except primitives.AuthenticationFailed:
                    raise InvalidInput(
                        detail=f"blob {blob_id.hex()} was not sealed for this job"
                    ) from None
                self.read_blobs += 1
                return compression.unpack(plain)
        raise InvalidInput(detail=f"the server did not answer blob {blob_id.hex()}")


class RemoteSource:
    """The plugin's :class:`~snowvault.plugins.base.Source` of a restore on the agent:
    a directory point written by the engine's restorer from :class:`RemoteBlobs`."""

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

        self.result = restorer.restore(
            self.blobs, "agent", target, include=include, overwrite=overwrite, progress=forward
        )

    def read_file(self, name: str) -> bytes:
        raise InvalidInput(detail="agents restore Directory points only for now")

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        raise InvalidInput(detail="agents restore Directory points only for now")

    def entries(self) -> list[plugins.base.EntryInfo]:
        raise InvalidInput(detail="agents restore Directory points only for now")

    def info(self) -> Mapping[str, Any]:
        return {}
