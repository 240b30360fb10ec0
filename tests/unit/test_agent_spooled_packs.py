"""An agent's direct packs (S3 vaults) are spooled, not held whole in memory, and sized so
the server accepts them: the bytes PUT are the bytes declared (SHA-256 = pack id, MD5 =
Content-MD5, size), every pack's header opens with the job key and describes its blobs,
and a pack of many tiny blobs is closed before its header takes it past the target."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
from typing import Any

import pytest

from snowvault.agent import store
from snowvault.control.services import agents
from snowvault.engine import compression, packs
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import primitives

JOB_KEY = b"j" * 32


class DirectApi:
    """Presign: a URL per pack; Commit: recorded. Nothing is ever present."""

    def __init__(self) -> None:
        self.declared: dict[str, dict[str, Any]] = {}
        self.committed: list[str] = []
        self.calls = 0

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        assert action == "AgentPutBlobs", action
        self.calls += 1
        agents.parse_packs(body.get("Commit") or body["Presign"])  # what the server accepts
        self.committed += [d["PackId"] for d in body.get("Commit", [])]
        uploads = []
        for declared in body.get("Presign", []):
            self.declared[declared["PackId"]] = declared
            url = f"http://store.invalid/{declared['PackId']}"
            uploads.append({"PackId": declared["PackId"], "Credential": {"Url": url}})
        return {"Uploads": uploads}


def _direct_store(
    monkeypatch: pytest.MonkeyPatch, pack_size: int
) -> tuple[store.RemoteBlobStore, DirectApi, dict[str, bytes]]:
    api = DirectApi()
    keys = store.JobKeys(JOB_KEY, b"i" * 32, ChunkerParams(), direct=True, pack_size=pack_size)
    keys = dataclasses.replace(keys, ask=False)
    blobs = store.RemoteBlobStore(api, "job-1", keys)  # type: ignore[arg-type]
    put: dict[str, bytes] = {}

    def fake_put(url: str, headers: dict[str, str], pack: Any) -> bool:
        body = b"".join(pack.blocks())
        assert pack.size == len(body)
        put[url.rsplit("/", 1)[1]] = body
        return True

    monkeypatch.setattr(blobs, "_put", fake_put)
    return blobs, api, put


def _entries(body: bytes) -> list[packs.PackEntry]:
    hlen = packs.header_length(body[-packs.TAIL_SIZE :])
    sealed = body[len(body) - packs.TAIL_SIZE - hlen : len(body) - packs.TAIL_SIZE]
    return packs.decode_header(primitives.Sealer(JOB_KEY), sealed)


def test_spooled_packs_are_the_bytes_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "SPOOL_IN_MEMORY", 64 * 1024)  # most packs go to a file
    monkeypatch.setattr(store, "PUT_BLOCK", 4096)
    blobs, api, put = _direct_store(monkeypatch, pack_size=512 * 1024)
    chunks = [random.Random(i).randbytes(30_000 + i) for i in range(100)]  # ~3 MiB, incompressible
    ids = [blobs.add_blob("data", c) for c in chunks]
    blobs.flush()
    assert len(put) >= 5 and set(put) == set(api.declared) == set(api.committed)
    stored: dict[bytes, bytes] = {}
    for pack_id, body in put.items():
        declared = api.declared[pack_id]
        assert hashlib.sha256(body).hexdigest() == pack_id
        assert declared["Size"] == len(body)
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        assert declared["ContentMD5"] == md5
        sealer = primitives.Sealer(JOB_KEY)
        for e in _entries(body):
            aad = packs.blob_aad(e.kind, e.blob_id)
            raw = sealer.open(body[e.offset : e.offset + e.length], aad)
            stored[e.blob_id] = compression.unpack(raw)
    assert [stored[i] for i in ids] == chunks


def test_many_tiny_blobs_close_a_pack_before_its_header_outgrows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = 256 * 1024
    blobs, _, put = _direct_store(monkeypatch, pack_size=target)
    for i in range(20_000):  # ~40 bytes sealed each: the header is as large as the blobs
        blobs.add_blob("data", b"%d" % i)
    blobs.flush()
    assert blobs.uploaded_blobs == 20_000
    sizes = [len(body) for body in put.values()]
    assert len(sizes) > 4
    assert max(sizes) <= target + 1024  # one blob, its entry and the header's sealing past it


def test_direct_pack_size_leaves_room_below_what_a_presign_accepts() -> None:
    mib = 1024 * 1024
    assert agents.direct_pack_size(16 * mib) == agents.MAX_PACK_BYTES - agents.DIRECT_PACK_ROOM
    assert agents.direct_pack_size(4 * mib) == 16 * mib
    assert agents.direct_pack_size(64 * 1024) == 256 * 1024
    # the largest blob an agent sends (a sealed 2 MiB chunk) still fits after the target
    assert agents.direct_pack_size(10**9) + 3 * mib <= agents.MAX_PACK_BYTES


def test_a_first_backup_keeps_no_pack_of_blobs_waiting_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is asked of the server (AskHasBlobs false): sealed blobs go on to the
    spool every batch, not a whole pack's worth held for a question never put."""
    blobs, api, _ = _direct_store(monkeypatch, pack_size=16 * 1024 * 1024)
    most = 0
    for i in range(200):  # ~6 MiB, incompressible
        blobs.add_blob("data", random.Random(i).randbytes(30_000))
        most = max(most, blobs._pending_bytes)
    assert most <= store.BATCH_BYTES
    blobs.flush()
    assert blobs.uploaded_blobs == 200 and len(api.committed) == 1
