"""A dict-backed stand-in for engine.repository.Repository (same blob/manifest methods).

Counts calls so tests can assert what was (not) uploaded, and can damage a blob so
restore errors can be checked without knowing the pack format.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future
from typing import Any

from snowvault.engine import errors
from snowvault.engine.chunker import ChunkerParams

SMALL_CHUNKS = ChunkerParams(min_size=4096, avg_size=8192, max_size=32768, seed=7)


class FakeRepository:
    def __init__(self, chunker_params: ChunkerParams = SMALL_CHUNKS) -> None:
        self.chunker_params = chunker_params
        self.blobs: dict[bytes, tuple[str, bytes]] = {}
        self.manifests: dict[str, dict[str, Any]] = {}
        self.add_calls: dict[str, int] = {"data": 0, "tree": 0}
        self.damaged: set[bytes] = set()
        self.stats_stored_bytes = 0
        self._lock = threading.Lock()

    def add_blob(self, kind: str, data: bytes | memoryview) -> bytes:
        raw = bytes(data)
        blob_id = hashlib.sha256(kind.encode() + b"\0" + raw).digest()
        with self._lock:
            self.add_calls[kind] += 1
            if blob_id not in self.blobs:
                self.blobs[blob_id] = (kind, raw)
                self.stats_stored_bytes += len(raw)
        return blob_id

    def add_blob_async(self, kind: str, data: bytes | memoryview) -> Future[bytes]:
        future: Future[bytes] = Future()
        future.set_result(self.add_blob(kind, data))
        return future

    def has_blob(self, blob_id: bytes) -> bool:
        return blob_id in self.blobs

    def get_blob(self, blob_id: bytes) -> bytes:
        if blob_id in self.damaged:
            raise errors.IntegrityError(name="pack fake", detail=f"blob {blob_id.hex()} is damaged")
        try:
            return self.blobs[blob_id][1]
        except KeyError:
            name = f"blob {blob_id.hex()}"
            raise errors.IntegrityError(name=name, detail="not in the index") from None

    def blob_location(self, blob_id: bytes) -> tuple[str, int, int]:
        return (f"pack-{blob_id[0] % 4}", blob_id[1], len(self.blobs[blob_id][1]))

    def flush(self) -> None:
        pass

    def save_manifest(self, manifest: dict[str, Any]) -> str:
        body = json.dumps(manifest, sort_keys=True)
        rp_id = hashlib.sha256(f"{len(self.manifests)}{body}".encode()).hexdigest()
        self.manifests[rp_id] = json.loads(body)
        return rp_id

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        if rp_id not in self.manifests:
            raise errors.RecoveryPointNotFound(id=rp_id)
        return json.loads(json.dumps(self.manifests[rp_id]))

    def list_manifests(self) -> list[str]:
        return sorted(self.manifests)

    def resolve(self, ref: str) -> str:
        if ref == "latest":
            return list(self.manifests)[-1]
        ids = [i for i in self.manifests if i.startswith(ref)]
        if len(ids) != 1:
            raise errors.RecoveryPointNotFound(id=ref)
        return ids[0]
