"""engine/copier and engine/usage on memory repositories: a copy holds the same files
under the destination's ids and keys, skips what the destination has, and never leaves
a manifest for a copy that died; usage splits shared bytes so they add up."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pytest

from snowvault.engine import check, cold, copier, errors, packs, stream_backup, tree, usage
from snowvault.engine.backends.base import Retention
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.tiered import TieredBackend
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock, LockingMemoryBackend

KDF = KdfParams.for_tests()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _repo() -> Repository:
    small = ChunkerParams(min_size=4096, avg_size=8192, max_size=65536)
    return Repository.init(
        MemoryBackend(), password="pw", kdf=KDF, pack_size=32 * 1024, chunker=small
    )


def _stream(repo: Repository, data: bytes, name: str = "dump") -> str:
    return stream_backup.backup_stream(repo, name, io.BytesIO(data), now=NOW).rp_id


def _read(repo: Repository, rp_id: str) -> bytes:
    """The one stream a stream backup holds, read back blob by blob."""
    [node] = tree.decode_tree(repo.get_blob(bytes.fromhex(repo.load_manifest(rp_id)["tree"])))
    return b"".join(repo.get_blob(bytes.fromhex(c)) for c, _ in node.content if c)


DATA = random.Random(3).randbytes(400_000)


def test_a_copy_reads_back_identical_and_a_second_moves_only_the_change() -> None:
    src, dst = _repo(), _repo()
    first = copier.copy_recovery_point(src, dst, _stream(src, DATA))
    assert _read(dst, first.rp_id) == DATA
    assert first.counts.bytes_written >= len(DATA)
    assert first.manifest["metadata"]["copied_from"]["repository"] == src.config.id
    assert first.manifest["parent"] is None
    assert check.check(dst, read_data=True).ok

    changed = bytearray(DATA)
    changed[200_000:200_100] = bytes(100)
    second = copier.copy_recovery_point(src, dst, _stream(src, bytes(changed)))
    assert _read(dst, second.rp_id) == bytes(changed)
    assert 0 < second.counts.bytes_written < first.counts.bytes_written * 0.25
    assert second.counts.bytes_total > second.counts.bytes_written
    again = copier.copy_recovery_point(
        src, dst, second.manifest["metadata"]["copied_from"]["recovery_point"]
    )
    assert again.counts.bytes_written == 0  # everything is there: only a new manifest


def test_ids_differ_between_repositories() -> None:
    src, dst = _repo(), _repo()
    result = copier.copy_recovery_point(src, dst, _stream(src, DATA))
    assert (
        result.manifest["tree"]
        != src.load_manifest(result.manifest["metadata"]["copied_from"]["recovery_point"])["tree"]
    )


def test_a_copy_that_dies_leaves_no_recovery_point() -> None:
    src, dst = _repo(), _repo()
    rp_id = _stream(src, DATA)

    def die(counts: copier.CopyCounts) -> None:
        if counts.blobs_total == 3:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        copier.copy_recovery_point(src, dst, rp_id, progress=die)
    dst.flush()
    assert dst.list_manifests() == []
    retried = copier.copy_recovery_point(src, dst, rp_id)
    assert retried.counts.bytes_written < retried.counts.bytes_total  # the dead run's packs
    assert _read(dst, retried.rp_id) == DATA


def test_a_damaged_source_blob_fails_the_copy() -> None:
    src, dst = _repo(), _repo()
    rp_id = _stream(src, DATA)
    name = next(o.name for o in src.backend.list("data/"))
    raw = bytearray(src.backend.get(name))
    raw[40] ^= 0xFF
    src.backend.delete(name)
    src.backend.put(name, bytes(raw))
    with pytest.raises(errors.IntegrityError):
        copier.copy_recovery_point(src, dst, rp_id)
    assert dst.list_manifests() == []


def test_usage_splits_shared_bytes_and_counts_unique_ones() -> None:
    repo = _repo()
    a = _stream(repo, DATA, "a")
    b = _stream(repo, DATA[:200_000] + random.Random(9).randbytes(200_000), "b")
    used = usage.repository_usage(repo)
    ua, ub = used.points[a], used.points[b]
    assert ua.unique_bytes < ua.referenced_bytes and ub.unique_bytes < ub.referenced_bytes
    assert ua.attributed_bytes + ub.attributed_bytes == pytest.approx(used.referenced_bytes)
    assert used.referenced_bytes <= used.stored_bytes
    shared = ua.referenced_bytes - ua.unique_bytes
    assert ua.attributed_bytes == pytest.approx(ua.unique_bytes + shared / 2)


def test_cold_moves_never_take_a_pack_under_retention_or_one_a_warm_point_needs() -> None:
    clock = FakeClock(NOW)
    warm, cold_store = LockingMemoryBackend(clock), MemoryBackend()
    small = ChunkerParams(min_size=4096, avg_size=8192, max_size=65536)
    repo = Repository.init(
        TieredBackend(warm, cold_store), password="pw", kdf=KDF, pack_size=32 * 1024, chunker=small
    )
    old = _stream(repo, DATA, "old")
    shared = _stream(repo, DATA[:100_000] + bytes(300_000), "shared")  # shares DATA's start
    locked = next(iter(cold_storage_names(repo, {old}) - cold_storage_names(repo, {shared})))
    warm.set_retention(locked, Retention("COMPLIANCE", NOW + timedelta(days=30)))

    moved = cold.move_cold_packs(repo, {old})
    assert locked not in moved.packs and warm.exists(locked)  # retention: it stays warm
    assert moved.packs and all(cold_store.exists(n) and not warm.exists(n) for n in moved.packs)
    assert moved.shared >= 1  # DATA's first packs are the warm point's too
    assert _read(repo, old) == DATA and check.check(repo, read_data=True).ok


def cold_storage_names(repo: Repository, points: set[str]) -> set[str]:
    ids, _shared = cold.cold_pack_ids(repo, points)
    return {packs.pack_name(i) for i in ids}
