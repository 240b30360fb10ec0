"""A blob store on the agent's host that the engine's archiver writes into: chunks are
named with the vault's blob-id key, compressed, sealed under the job's data key, and
uploaded in batches after asking which of them the vault already has.

    store = RemoteBlobStore(api, job_id, keys)
    result = archiver.backup_paths(store, [path], now=clock.now())   # ends with PutManifest

Bounds: one upload request carries at most :data:`BATCH_BYTES` of sealed blobs (the
server's default request limit is 4 MiB, base64 adds a third); a larger sealed blob (an
incompressible chunk of the 2 MiB the server's agent chunker allows, a large tree) goes
alone in its own request, whole, up to :data:`MAX_CALL_BYTES`: no blob is ever split
over calls, so whichever server answers a call can store what it carries. A blob
larger than that (a tree of a directory with some hundred thousand entries) fails the
job with one line.
"""

from __future__ import annotations

import base64
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from snowvault.agent.client import AgentApi
from snowvault.core.errors import InvalidInput
from snowvault.engine import compression
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import agent_blobs

BATCH_BYTES = 2 * 1024 * 1024
MAX_CALL_BYTES = 3 * 1024 * 1024 - 64 * 1024
"""The largest sealed blob one request carries (base64 of it and the JSON around it
stay under the server's default 4 MiB request limit)."""
MAX_IDS_PER_ASK = 1000


@dataclass(frozen=True)
class JobKeys:
    job_key: bytes = field(repr=False)
    id_key: bytes = field(repr=False)
    chunker: ChunkerParams

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> JobKeys:
        return cls(
            base64.b64decode(doc["JobKey"]),
            base64.b64decode(doc["IdKey"]),
            ChunkerParams.from_dict(doc["Chunker"]),
        )


def _item(blob_id: bytes, kind: str, data: bytes) -> dict[str, Any]:
    return {"BlobId": blob_id.hex(), "Kind": kind, "Data": base64.b64encode(data).decode()}


class RemoteBlobStore:
    """:class:`snowvault.engine.archiver.BlobStore` over the agent operations."""

    def __init__(self, api: AgentApi, job_id: str, keys: JobKeys, total: int = 0) -> None:
        self._api = api
        self._job_id = job_id
        self._keys = keys
        self._lock = threading.Lock()
        self._known: set[bytes] = set()
        self._pending: list[tuple[bytes, str, bytes]] = []
        self._pending_bytes = 0
        self.total = total
        self.stats_stored_bytes = 0
        self.uploaded_blobs = 0
        self.skipped_blobs = 0
        self.recovery_point_arn: str | None = None
        self.state: str | None = None

    @property
    def chunker_params(self) -> ChunkerParams:
        return self._keys.chunker

    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes:
        blob_id = agent_blobs.blob_id(self._keys.id_key, data)
        with self._lock:
            if blob_id in self._known:
                return blob_id
            self._known.add(blob_id)
            sealed = agent_blobs.seal_blob(
                self._keys.job_key, self._job_id, str(kind), blob_id, compression.pack(data)
            )
            if self._pending_bytes + len(sealed) > BATCH_BYTES:
                self._flush_locked()
            self._pending.append((blob_id, str(kind), sealed))
            self._pending_bytes += len(sealed)
        return blob_id

    def add_blob_async(self, kind: Any, data: bytes | memoryview) -> Future[bytes]:
        done: Future[bytes] = Future()
        done.set_result(self.add_blob(kind, data))
        return done

    def get_blob(self, blob_id: bytes) -> bytes:
        raise InvalidInput(detail="an agent reads no blobs back from the vault")

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        raise InvalidInput(detail="an agent reads no recovery points back from the vault")

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        present: set[str] = set()
        ids = [blob_id.hex() for blob_id, _, _ in pending]
        for start in range(0, len(ids), MAX_IDS_PER_ASK):
            doc = self._api.call(
                "AgentHasBlobs",
                {"JobId": self._job_id, "BlobIds": ids[start : start + MAX_IDS_PER_ASK]},
            )
            present.update(doc.get("Present", []))
        missing = [b for b in pending if b[0].hex() not in present]
        self.skipped_blobs += len(pending) - len(missing)
        small = [b for b in missing if len(b[2]) <= BATCH_BYTES]
        if small:
            body = [_item(blob_id, kind, sealed) for blob_id, kind, sealed in small]
            self._api.call("AgentPutBlobs", {"JobId": self._job_id, "Blobs": body})
        for blob_id, kind, sealed in missing:
            if len(sealed) > MAX_CALL_BYTES:
                raise InvalidInput(
                    detail=f"a {kind} blob of {len(sealed)} bytes is larger than one upload "
                    f"request carries ({MAX_CALL_BYTES}); agents cannot store it"
                )
            if len(sealed) > BATCH_BYTES:  # alone, whole
                item = _item(blob_id, kind, sealed)
                self._api.call("AgentPutBlobs", {"JobId": self._job_id, "Blobs": [item]})
        self.uploaded_blobs += len(missing)
        self.stats_stored_bytes += sum(len(sealed) for _, _, sealed in missing)

    def save_manifest(self, manifest: dict[str, Any]) -> str:
        """Upload what is pending, then commit the point on the server (it completes the
        job); the recovery point ARN."""
        self.flush()
        doc = self._api.call(
            "AgentPutManifest",
            {"JobId": self._job_id, "Manifest": manifest, "BackupSizeInBytes": self.total},
        )
        self.state = str(doc.get("State"))
        self.recovery_point_arn = str(doc["RecoveryPointArn"])
        return self.recovery_point_arn
