"""Repository core: key slots, blob round trips, dedup, crash ordering, manifests."""

from __future__ import annotations

import os
import random

import pytest

from snowvault.engine import errors, packs
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing.backends import FaultyBackend

KDF = KdfParams.for_tests()


def _repo(backend: MemoryBackend | None = None, **kw: object) -> Repository:
    return Repository.init(backend or MemoryBackend(), password="pw", kdf=KDF, **kw)  # type: ignore[arg-type]


def test_blob_round_trip_through_reopen() -> None:
    backend = MemoryBackend()
    repo = _repo(backend, pack_size=4096)
    payloads = [random.Random(i).randbytes(3000 + i) for i in range(20)]
    ids = [repo.add_blob("data", p) for p in payloads]
    repo.flush()
    reopened = Repository.open(backend, password="pw")
    assert [reopened.get_blob(i) for i in ids] == payloads


def test_identical_blobs_are_stored_once() -> None:
    repo = _repo()
    futures = [repo.add_blob_async("data", b"same" * 1000) for _ in range(50)]
    ids = {f.result() for f in futures}
    repo.flush()
    assert len(ids) == 1
    assert repo.stats_added_blobs == 1


def test_blob_ids_are_keyed_per_repository() -> None:
    a, b = _repo(), _repo()
    assert a.blob_id(b"x") != b.blob_id(b"x")


def test_compressible_data_is_stored_smaller() -> None:
    repo = _repo()
    repo.add_blob("data", b"a" * 100_000)
    repo.add_blob("data", os.urandom(100_000))
    repo.flush()
    assert repo.stats_stored_bytes < 100_000 + 100_000 // 2 + 200


def test_wrong_password_and_missing_repository() -> None:
    backend = MemoryBackend()
    _repo(backend)
    with pytest.raises(errors.WrongKey):
        Repository.open(backend, password="nope")
    with pytest.raises(errors.RepositoryNotFound):
        Repository.open(MemoryBackend(), password="pw")
    with pytest.raises(errors.RepositoryExists):
        _repo(backend)


def test_key_slots_add_and_remove_without_reencryption() -> None:
    backend = MemoryBackend()
    repo = _repo(backend)
    blob = repo.add_blob("data", b"payload")
    repo.flush()
    raw = os.urandom(32)
    slot = repo.add_key_slot(raw_key=raw)
    before = {o.name for o in backend.list("data/")}
    assert Repository.open(backend, raw_key=raw).get_blob(blob) == b"payload"
    first = next(s.id for s in repo.list_key_slots() if s.id != slot)
    repo.remove_key_slot(first)
    with pytest.raises(errors.WrongKey):
        Repository.open(backend, password="pw")
    assert {o.name for o in backend.list("data/")} == before
    with pytest.raises(errors.EngineError):
        repo.remove_key_slot(slot)  # the last slot stays


def test_tampered_blob_names_the_pack() -> None:
    backend = MemoryBackend()
    repo = _repo(backend)
    blob = repo.add_blob("data", b"important" * 100)
    repo.flush()
    (info,) = list(backend.list("data/"))
    data = bytearray(backend.get(info.name))
    data[5] ^= 0xFF
    backend._objects[info.name] = bytes(data)  # simulate bit rot under the store
    with pytest.raises(errors.IntegrityError, match=info.name):
        Repository.open(backend, password="pw").get_blob(blob)


class _Recording(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def put(self, name: str, data: bytes) -> None:
        super().put(name, data)
        self.puts.append(name)


def test_pack_is_written_before_its_index_and_manifest_last() -> None:
    backend = _Recording()
    repo = _repo(backend)
    repo.add_blob("data", b"x" * 10)
    repo.save_manifest({"tree": "00", "time": "t"})
    puts = backend.puts
    data_i = next(i for i, n in enumerate(puts) if n.startswith("data/"))
    index_i = next(i for i, n in enumerate(puts) if n.startswith("index/"))
    rp_i = next(i for i, n in enumerate(puts) if n.startswith("recovery-points/"))
    assert data_i < index_i < rp_i


def test_failed_upload_surfaces_at_flush_and_no_manifest_is_written() -> None:
    inner = MemoryBackend()
    backend = FaultyBackend(inner)
    repo = _repo(backend)  # type: ignore[arg-type]
    backend.fail(
        "put", nth=backend.calls["put"] + 1, error=errors.PermanentBackendError(detail="full")
    )
    repo.add_blob("data", b"y" * 10)
    with pytest.raises(errors.PermanentBackendError):
        repo.save_manifest({"tree": "00", "time": "t"})
    assert not list(inner.list("recovery-points/"))


def test_pack_header_lists_blobs() -> None:
    repo = _repo()
    ids = [repo.add_blob("data", bytes([i]) * 500) for i in range(5)]
    repo.flush()
    ((pack_id, _),) = list(repo.list_packs())
    header = repo.read_pack_header(pack_id)
    assert [e.blob_id for e in header] == ids
    assert all(e.kind == packs.KIND_DATA for e in header)


def test_resolve_latest_and_prefix() -> None:
    repo = _repo()
    a = repo.save_manifest({"tree": "00", "time": "2026-01-01T00:00:00+00:00"})
    b = repo.save_manifest({"tree": "00", "time": "2026-01-02T00:00:00+00:00"})
    assert repo.resolve("latest") == b
    assert repo.resolve(a[:10]) == a
    with pytest.raises(errors.RecoveryPointNotFound):
        repo.resolve("zz")
