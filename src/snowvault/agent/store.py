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

Where the vault's store is S3 (the claim's ``Keys.Direct``), the blobs the vault lacks
go into packs built here instead (a keyed pack: blobs and header sealed under the job
key, ids under the host's scoped id key; repository-format.md), each PUT straight to
the store through a presigned URL the server gives for that pack id, then committed
together with the next packs' presign (one call per :data:`PACKS_PER_CALL` packs): the
server carries no data
(docs/design/agents.md, "Direct uploads to S3").
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import urllib3

from snowvault.agent.client import AgentApi
from snowvault.core.errors import InvalidInput
from snowvault.engine import compression, packs
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import agent_blobs, primitives

BATCH_BYTES = 2 * 1024 * 1024
MAX_CALL_BYTES = 3 * 1024 * 1024 - 64 * 1024
"""The largest sealed blob one request carries (base64 of it and the JSON around it
stay under the server's default 4 MiB request limit)."""
MAX_IDS_PER_ASK = 1000
MAX_BLOBS_PER_PUT = 256
"""The server's limit of blobs in one AgentPutBlobs (interfaces/api/agent_actions.py)."""
PUT_TRIES = 4
DEFAULT_PACK_SIZE = 16 * 1024 * 1024
PACKS_PER_CALL = 2
"""Direct uploads: packs presigned (and then committed) per call. Each call costs the
server an HTTP request and a few store requests (a listing of key slots and of pack-key
records, a record write, a segment write) whatever the number of packs in it; each pack
a HEAD, a presign and the commit's ranged read. A batch of two halves the per-call part
per pack for one more pack waiting in the agent's spool."""
SPOOL_IN_MEMORY = 1024 * 1024
"""A pack being built stays in memory up to this size, then goes on in a temporary file
(deleted when closed, and by the system if the agent dies): the agent's memory does not
grow with the pack size the server asks for (up to 64 MiB) nor with the packs waiting
for their call."""
PUT_BLOCK = 1024 * 1024
HEADER_ENTRY_BYTES = 1 + 32 + 4 + 4
"""A blob's entry in a pack header (kind, id, lengths: engine/packs.py): a pack is closed
when its blobs and header reach the server's target, so many small blobs cannot push it
past the size a presign accepts."""
"""What a PUT of a spooled pack reads from its file at a time."""


@dataclass(frozen=True)
class JobKeys:
    job_key: bytes = field(repr=False)
    id_key: bytes = field(repr=False)
    chunker: ChunkerParams
    direct: bool = False
    pack_size: int = DEFAULT_PACK_SIZE
    ask: bool = True
    """Whether AgentHasBlobs can answer anything (the server says False when the
    resource has no point in the vault yet and this is the job's first attempt)."""

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> JobKeys:
        return cls(
            base64.b64decode(doc["JobKey"]),
            base64.b64decode(doc["IdKey"]),
            ChunkerParams.from_dict(doc["Chunker"]),
            bool(doc.get("Direct")),
            int(doc.get("PackSize") or DEFAULT_PACK_SIZE),
            doc.get("AskHasBlobs", True) is not False,
        )


class _Pack:
    """A keyed pack being filled (blobs of one kind), spooled (:data:`SPOOL_IN_MEMORY`),
    its SHA-256 (the pack id) and MD5 (the upload's Content-MD5) computed as it grows."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.size = 0
        self.entries: list[packs.PackEntry] = []
        self._digest = agent_blobs.PackDigest()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def seal(self, sealer: primitives.Sealer) -> dict[str, Any]:
        """Append the sealed header; the pack as a presign or commit declares it."""
        self.write(packs.encode_header(sealer, self.entries))
        self.file.flush()
        return {
            "PackId": self._digest.pack_id(),
            "Size": self.size,
            "ContentMD5": self._digest.content_md5(),
        }

    def blocks(self) -> Iterator[bytes]:
        """The pack's bytes from the start, :data:`PUT_BLOCK` at a time (a PUT's body)."""
        self.file.seek(0)
        while block := self.file.read(PUT_BLOCK):
            yield block

    def close(self) -> None:
        self.file.close()


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
        self._pending: list[tuple[bytes, str, bytes, int]] = []
        self._pending_bytes = 0
        self.total = total
        self.stats_stored_bytes = 0
        self.uploaded_blobs = 0
        self.skipped_blobs = 0
        self.recovery_point_arn: str | None = None
        self.state: str | None = None
        self.packs_uploaded = 0
        self._sealer = primitives.Sealer(keys.job_key)
        self._open: dict[int, _Pack] = {}
        self._http: urllib3.PoolManager | None = None
        self._ready: list[tuple[dict[str, Any], _Pack]] = []
        """Packs sealed and named, waiting for the batch's presign."""
        self._to_commit: list[dict[str, Any]] = []
        """The packs put last, committed with the next call (an agent killed before
        their commit sends them again, with the ready and the filling packs: at most
        ``2 * PACKS_PER_CALL`` packs)."""
        # direct: blobs are asked about a pack's worth at a time (nothing but ids goes to
        # the server, so the request limit does not bound the batch; fewer HasBlobs calls);
        # when nothing is asked (a first backup) they go on to the spool at once instead
        # of waiting in memory for a question never put
        asking = keys.direct and keys.ask
        self._batch_bytes = max(BATCH_BYTES, keys.pack_size) if asking else BATCH_BYTES

    @property
    def chunker_params(self) -> ChunkerParams:
        return self._keys.chunker

    def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes:
        blob_id = agent_blobs.blob_id(self._keys.id_key, data)
        with self._lock:
            if blob_id in self._known:
                return blob_id
            self._known.add(blob_id)
            if self._keys.direct:  # sealed as a keyed pack holds it
                aad = packs.blob_aad(packs.KINDS[str(kind)], blob_id)
                sealed = self._sealer.seal(compression.pack(data), aad)
            else:
                sealed = agent_blobs.seal_blob(
                    self._keys.job_key, self._job_id, str(kind), blob_id, compression.pack(data)
                )
            if self._pending_bytes + len(sealed) > self._batch_bytes:
                self._flush_locked()
            self._pending.append((blob_id, str(kind), sealed, len(data)))
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
            for kind in sorted(self._open):
                self._upload_pack(self._open.pop(kind))
            if self._ready:
                self._upload_ready()
            self._commit_pending()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        present: set[str] = set()
        ids = [blob_id.hex() for blob_id, _, _, _ in pending] if self._keys.ask else []
        for start in range(0, len(ids), MAX_IDS_PER_ASK):
            doc = self._api.call(
                "AgentHasBlobs",
                {"JobId": self._job_id, "BlobIds": ids[start : start + MAX_IDS_PER_ASK]},
            )
            present.update(doc.get("Present", []))
        missing = [b for b in pending if b[0].hex() not in present]
        self.skipped_blobs += len(pending) - len(missing)
        if self._keys.direct:
            self._add_to_packs(missing)
            return
        small = [b for b in missing if len(b[2]) <= BATCH_BYTES]
        for start in range(0, len(small), MAX_BLOBS_PER_PUT):  # many small files: many calls
            body = [
                _item(b, kind, sealed)
                for b, kind, sealed, _ in small[start : start + MAX_BLOBS_PER_PUT]
            ]
            self._api.call("AgentPutBlobs", {"JobId": self._job_id, "Blobs": body})
        for blob_id, kind, sealed, _ in missing:
            if len(sealed) > MAX_CALL_BYTES:
                raise InvalidInput(
                    detail=f"a {kind} blob of {len(sealed)} bytes is larger than one upload "
                    f"request carries ({MAX_CALL_BYTES}); agents cannot store it"
                )
            if len(sealed) > BATCH_BYTES:  # alone, whole
                item = _item(blob_id, kind, sealed)
                self._api.call("AgentPutBlobs", {"JobId": self._job_id, "Blobs": [item]})
        self.uploaded_blobs += len(missing)
        self.stats_stored_bytes += sum(len(sealed) for _, _, sealed, _ in missing)

    # -- direct uploads: keyed packs, PUT to the store through presigned URLs -------

    def _add_to_packs(self, blobs: list[tuple[bytes, str, bytes, int]]) -> None:
        for blob_id, kind, sealed, raw in blobs:
            code = packs.KINDS[kind]
            pack = self._open.get(code)
            if pack is None:
                pack = self._open[code] = _Pack()
            pack.entries.append(packs.PackEntry(code, blob_id, pack.size, len(sealed), raw))
            pack.write(sealed)
            self.uploaded_blobs += 1
            self.stats_stored_bytes += len(sealed)
            if pack.size + HEADER_ENTRY_BYTES * len(pack.entries) >= self._keys.pack_size:
                self._upload_pack(self._open.pop(code))

    def _upload_pack(self, pack: _Pack) -> None:
        """Seal the header and name the pack by its SHA-256; once :data:`PACKS_PER_CALL`
        are ready, upload them (:meth:`_upload_ready`)."""
        if not pack.entries:
            pack.close()
            return
        self._ready.append((pack.seal(self._sealer), pack))
        if len(self._ready) >= PACKS_PER_CALL:
            self._upload_ready()

    def _upload_ready(self) -> None:
        """Ask for presigned URLs of the ready packs in one call (with the commit of the
        packs put before: one call per batch), PUT each (a failed PUT is tried again
        with a fresh URL); their commit goes with the next batch, or with :meth:`flush`."""
        batch, self._ready = self._ready, []
        try:
            self._upload_batch(batch)
        finally:
            for _, pack in batch:
                pack.close()
        self._to_commit = [d for d, _ in batch]
        self.packs_uploaded += len(batch)

    def _upload_batch(self, batch: list[tuple[dict[str, Any], _Pack]]) -> None:
        todo = batch
        for attempt in range(PUT_TRIES):
            params: dict[str, Any] = {"JobId": self._job_id, "Presign": [d for d, _ in todo]}
            if self._to_commit:
                params["Commit"] = self._to_commit
            doc = self._api.call("AgentPutBlobs", params)
            self._to_commit = []
            uploads = {str(u["PackId"]): u for u in doc["Uploads"]}
            failed = []
            for declared, pack in todo:
                upload = uploads[declared["PackId"]]
                if upload.get("Exists"):
                    continue
                signed = upload["Credential"]
                if not self._put(str(signed["Url"]), dict(signed.get("Headers") or {}), pack):
                    failed.append((declared, pack))
            if not failed:
                break
            if attempt + 1 == PUT_TRIES:
                pack_id = failed[0][0]["PackId"]
                raise InvalidInput(detail=f"the store refused pack {pack_id} {PUT_TRIES} times")
            time.sleep(min(2.0**attempt, 10.0))
            todo = failed

    def _commit_pending(self) -> None:
        if self._to_commit:
            self._api.call("AgentPutBlobs", {"JobId": self._job_id, "Commit": self._to_commit})
            self._to_commit = []

    def _put(self, url: str, headers: dict[str, str], pack: _Pack) -> bool:
        """One PUT of ``pack`` to a presigned URL, streamed from its spool: True when the
        store holds it (200, or 412: an earlier try landed; the commit checks its size
        and MD5)."""
        if self._http is None:
            self._http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(30, 300))
        headers = headers | {"Content-Length": str(pack.size)}
        try:
            response = self._http.request("PUT", url, body=pack.blocks(), headers=headers)
        except urllib3.exceptions.HTTPError:
            return False
        if response.status in (200, 412):
            return True
        if response.status in (403, 408, 429) or response.status >= 500:
            return False  # an expired URL, throttling, the store's trouble: try again
        raise InvalidInput(
            detail=f"the store refused pack upload with HTTP {response.status}: "
            f"{response.data[:200]!r}"
        )

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
