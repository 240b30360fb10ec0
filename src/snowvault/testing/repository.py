"""FakeRepository: a dict-backed stand-in for :class:`snowvault.engine.repository.Repository`.

It keeps blobs and manifests in memory, unencrypted, with no packs or index, and answers
the operations the archiver, restorer, browser and services use exactly as Repository
does — tests/contract/test_repository_contract.py runs one suite over both. On top it
counts ``add_blob`` calls per kind (``add_calls``) so a test can assert what was (not)
uploaded, and ``damaged`` blob ids read back as IntegrityError, so restore errors can be
tested without knowing the pack format.

    >>> repo = FakeRepository()
    >>> blob = repo.add_blob("data", b"hello")
    >>> repo.get_blob(blob), repo.add_calls["data"]
    (b'hello', 1)

Only tests import this module; nothing in src does (an import-linter contract).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from snowvault.engine import errors
from snowvault.engine.chunker import ChunkerParams

if TYPE_CHECKING:
    from snowvault.engine.repository import Repository

SMALL_CHUNKS = ChunkerParams(min_size=4096, avg_size=8192, max_size=32768, seed=7)


def small_chunk_repository(path: str | os.PathLike[str]) -> Repository:
    """A real repository in the directory ``path`` (local backend) with test keys (a
    cheap KDF) and :data:`SMALL_CHUNKS`, so a test's files of a few KiB are cut into
    several chunks and packs fill quickly."""
    from snowvault.engine.backends.local import LocalBackend
    from snowvault.engine.crypto import KdfParams
    from snowvault.engine.repository import Repository

    return Repository.init(
        LocalBackend(os.fspath(path)),
        password="pw",
        kdf=KdfParams.for_tests(),
        chunker=SMALL_CHUNKS,
    )


class FakeRepository:
    """The Repository surface the engine's callers use, in memory."""

    def __init__(self, chunker_params: ChunkerParams = SMALL_CHUNKS) -> None:
        self.chunker_params = chunker_params
        self.blobs: dict[bytes, tuple[str, bytes]] = {}
        self.manifest_docs: dict[str, dict[str, Any]] = {}
        self.add_calls: dict[str, int] = {"data": 0, "tree": 0}
        self.damaged: set[bytes] = set()
        self.stats_stored_bytes = 0
        self._lock = threading.Lock()
        self._saves = itertools.count()

    # ----------------------------------------------------------------- life cycle
    def close(self) -> None:
        self.flush()

    def __enter__(self) -> FakeRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Nothing is buffered: every blob is readable as soon as it is added."""

    # ----------------------------------------------------------------- blobs
    def blob_id(self, data: bytes | memoryview) -> bytes:
        return hashlib.sha256(bytes(data)).digest()

    def add_blob(self, kind: str, data: bytes | memoryview) -> bytes:
        raw = bytes(data)
        blob_id = self.blob_id(raw)
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
        """A made-up (pack, offset, length): enough for callers that sort by pack."""
        if blob_id not in self.blobs:
            raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not in the index")
        return (f"pack-{blob_id[0] % 4}", blob_id[1], len(self.blobs[blob_id][1]))

    # ----------------------------------------------------------------- manifests
    def save_manifest(self, manifest: dict[str, Any]) -> str:
        body = json.dumps(manifest, sort_keys=True)
        rp_id = hashlib.sha256(f"{next(self._saves)}:{body}".encode()).hexdigest()
        self.manifest_docs[rp_id] = json.loads(body)
        return rp_id

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        if rp_id not in self.manifest_docs:
            raise errors.RecoveryPointNotFound(id=rp_id)
        doc: dict[str, Any] = json.loads(json.dumps(self.manifest_docs[rp_id]))
        return doc

    def list_manifests(self) -> list[str]:
        return sorted(self.manifest_docs)

    def delete_manifest(self, rp_id: str, *, bypass_governance: bool = False) -> None:
        if self.manifest_docs.pop(rp_id, None) is None:
            raise errors.RecoveryPointNotFound(id=rp_id)

    def manifests(
        self, on_damaged: Callable[[str, errors.IntegrityError], None] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every recovery point with its manifest, oldest first (by its ``time``)."""
        pairs = [(rp_id, self.load_manifest(rp_id)) for rp_id in self.list_manifests()]
        pairs.sort(key=lambda p: (str(p[1].get("time", "")), p[0]))
        return pairs

    def resolve(self, ref: str, where: Callable[[dict[str, Any]], bool] | None = None) -> str:
        """``latest`` (optionally among manifests where ``where`` holds), a full id or a
        unique prefix of one."""
        if ref == "latest":
            pairs = [p for p in self.manifests() if where is None or where(p[1])]
            if not pairs:
                raise errors.RecoveryPointNotFound(id="latest")
            return pairs[-1][0]
        ids = [i for i in self.list_manifests() if i.startswith(ref)] if ref else []
        if len(ids) != 1:
            raise errors.RecoveryPointNotFound(id=ref if not ids else f"{ref} (ambiguous)")
        return ids[0]
