"""One suite over the repository kinds the engine's callers see: the real Repository on a
MemoryBackend and snowvault.testing.FakeRepository. It covers the operations the
archiver, restorer, browser and services use — blobs (add, dedup, read back, unknown
ids), manifests (save, load, list, delete, order by time) and resolving a reference —
so a test written against the fake holds against the real thing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from snowvault.engine import errors
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeRepository
from snowvault.testing.repository import SMALL_CHUNKS


def _real() -> Repository:
    return Repository.init(
        MemoryBackend(), password="pw", kdf=KdfParams.for_tests(), chunker=SMALL_CHUNKS
    )


KINDS: dict[str, Callable[[], Any]] = {"repository-memory": _real, "fake": FakeRepository}


@pytest.fixture(params=sorted(KINDS))
def repo(request: pytest.FixtureRequest) -> Iterator[Any]:
    with KINDS[request.param]() as repo:
        yield repo


def test_a_blob_reads_back_and_the_same_bytes_are_stored_once(repo: Any) -> None:
    first = repo.add_blob("data", b"hello" * 100)
    again = repo.add_blob_async("data", memoryview(b"hello" * 100)).result()
    other = repo.add_blob("tree", b'{"nodes": []}')
    repo.flush()
    assert first == again != other
    assert repo.has_blob(first) and repo.has_blob(other)
    assert repo.get_blob(first) == b"hello" * 100
    assert repo.get_blob(other) == b'{"nodes": []}'
    pack, offset, length = repo.blob_location(first)
    assert isinstance(pack, str) and offset >= 0 and length > 0


def test_an_unknown_blob_is_an_integrity_error(repo: Any) -> None:
    unknown = bytes(32)
    assert not repo.has_blob(unknown)
    with pytest.raises(errors.IntegrityError):
        repo.get_blob(unknown)
    with pytest.raises(errors.IntegrityError):
        repo.blob_location(unknown)


def test_a_manifest_reads_back_as_saved_and_is_listed(repo: Any) -> None:
    doc = {"time": "2026-01-01T00:00:00Z", "tree": "ab" * 32, "meta": {"n": [1, 2]}}
    rp_id = repo.save_manifest(doc)
    same = repo.save_manifest(doc)
    assert rp_id != same and len(rp_id) == 64 and int(rp_id, 16) >= 0
    loaded = repo.load_manifest(rp_id)
    assert loaded == doc
    loaded["meta"]["n"].append(3)  # the caller's copy, not the repository's
    assert repo.load_manifest(rp_id) == doc
    assert repo.list_manifests() == sorted([rp_id, same])


def test_an_unknown_or_deleted_manifest_is_not_found(repo: Any) -> None:
    rp_id = repo.save_manifest({"time": "2026-01-01T00:00:00Z"})
    repo.delete_manifest(rp_id)
    assert repo.list_manifests() == []
    with pytest.raises(errors.RecoveryPointNotFound):
        repo.load_manifest(rp_id)
    with pytest.raises(errors.RecoveryPointNotFound):
        repo.delete_manifest(rp_id)


def test_manifests_come_oldest_first_and_latest_is_the_newest_time(repo: Any) -> None:
    late = repo.save_manifest({"time": "2026-03-01T00:00:00Z", "host": "a"})
    early = repo.save_manifest({"time": "2026-01-01T00:00:00Z", "host": "b"})
    middle = repo.save_manifest({"time": "2026-02-01T00:00:00Z", "host": "b"})
    assert [rp for rp, _ in repo.manifests()] == [early, middle, late]
    assert repo.resolve("latest") == late
    assert repo.resolve("latest", where=lambda m: m["host"] == "b") == middle
    with pytest.raises(errors.RecoveryPointNotFound):
        repo.resolve("latest", where=lambda m: m["host"] == "c")


def test_resolve_takes_a_full_id_or_a_unique_prefix(repo: Any) -> None:
    ids = [repo.save_manifest({"time": f"2026-01-0{i}T00:00:00Z"}) for i in range(1, 6)]
    for rp_id in ids:
        assert repo.resolve(rp_id) == rp_id
        unique = next(
            rp_id[:n] for n in range(1, 65) if sum(i.startswith(rp_id[:n]) for i in ids) == 1
        )
        assert repo.resolve(unique) == rp_id
    for ref in ("", "zz", "0123456789abcdef" * 4):
        with pytest.raises(errors.RecoveryPointNotFound):
            repo.resolve(ref)


def test_latest_of_an_empty_repository_is_not_found(repo: Any) -> None:
    assert repo.manifests() == []
    with pytest.raises(errors.RecoveryPointNotFound):
        repo.resolve("latest")
