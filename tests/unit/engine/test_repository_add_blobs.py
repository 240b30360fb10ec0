"""Repository.add_blobs: a batch stores what blob-by-blob adds store, byte for byte.

With the nonces fixed (all zero, a test-only stand-in for getrandom), a repository fed
a batch at a time and one fed blob by blob hold the same packs, cut at the same sizes,
and the same index segments; with real nonces every blob reads back.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from snowvault.engine import small_files
from snowvault.engine.backends.base import Backend
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams, primitives
from snowvault.engine.repository import Repository

KDF = KdfParams.for_tests()
PACK_SIZE = 16 * 1024  # a few blobs a pack: batches are cut across packs


def _payloads() -> list[bytes]:
    rng = random.Random(15)
    out = []
    for i in range(60):
        size = rng.choice((0, 1, 63, 64, 700, 5000, 20_000))
        if i % 3:
            out.append(rng.randbytes(size))  # incompressible: stored raw
        else:
            out.append((b"text %d " % i) * (size // 7))  # compressed
    out[10] = out[4]  # a repeat within a batch
    out[40] = out[7]  # a repeat of an earlier batch's blob
    out[30] = rng.randbytes(primitives.STREAM_BYTES + 5000)  # sealed streamed
    return out


def _objects(backend: Backend) -> dict[str, bytes]:
    return {
        info.name: backend.get(info.name)
        for prefix in ("data/", "index/")
        for info in backend.list(prefix)
    }


def _twins(kind: str, tmp_path: Path) -> tuple[Backend, Backend]:
    """Two stores holding one repository (same keys and config), no blob in either."""
    if kind == "memory":
        first: Backend = MemoryBackend()
        second: Backend = MemoryBackend()
    else:  # a local store: packs are spooled to a file as they fill (pack_spool)
        first, second = LocalBackend(tmp_path / "a"), LocalBackend(tmp_path / "b")
    Repository.init(first, password="pw", kdf=KDF, pack_size=PACK_SIZE)
    for info in first.list(""):
        second.put(info.name, first.get(info.name))
    return first, second


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_a_batch_stores_the_bytes_blob_by_blob_adds_store(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one, batched = _twins(kind, tmp_path)
    drawn: list[int] = []

    def zero_nonces(n: int) -> bytes:
        drawn.append(n)
        return bytes(n)

    monkeypatch.setattr(os, "urandom", zero_nonces)
    payloads = _payloads()
    repo = Repository.open(one_by_one, password="pw")
    ids = [repo.add_blob("data", data) for data in payloads]
    repo.flush()
    repo = Repository.open(batched, password="pw")
    drawn.clear()
    batch_ids = []
    for start in (0, 25, 50):
        batch_ids += repo.add_blobs("data", payloads[start : start + 25])
    repo.flush()
    assert batch_ids == ids
    expected = _objects(one_by_one)
    assert len([n for n in expected if n.startswith("data/")]) > 3
    assert _objects(batched) == expected
    new = len(set(payloads))  # each batch's new blobs got their nonces in one draw
    assert sum(n for n in drawn if n > primitives.NONCE_SIZE) == new * primitives.NONCE_SIZE


def test_a_batch_reads_back_and_stores_a_known_blob_once() -> None:
    backend = MemoryBackend()
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=PACK_SIZE)
    payloads = _payloads()
    first = repo.add_blob("data", payloads[0])
    ids = repo.add_blobs("data", payloads)
    assert ids[0] == first
    assert repo.stats_added_blobs == len(set(payloads))
    repo.flush()
    assert repo.add_blobs("data", payloads[:5]) == ids[:5]
    assert repo.stats_added_blobs == len(set(payloads))
    reopened = Repository.open(backend, password="pw")
    assert [reopened.get_blob(i) for i in ids] == payloads


class _Files:
    """Files by name: bytes, or an error to raise when read."""

    def __init__(self, files: dict[bytes, bytes | OSError]) -> None:
        self.files = files

    def read_small(self, path: bytes, size: int) -> bytes:
        got = self.files[path]
        if isinstance(got, OSError):
            raise got
        return got


def test_small_files_store_a_batch_in_runs_with_its_errors_and_holes_in_place() -> None:
    repo = Repository.init(MemoryBackend(), password="pw", kdf=KDF)
    calls: list[int] = []
    add_blobs: Callable[..., list[bytes]] = repo.add_blobs

    def counting(kind: str, datas: list[bytes]) -> list[bytes]:
        calls.append(sum(map(len, datas)))
        return add_blobs(kind, datas)

    repo.add_blobs = counting  # type: ignore[method-assign]
    rng = random.Random(3)
    contents: dict[bytes, bytes | OSError] = {
        b"f%03d" % i: rng.randbytes(rng.randrange(1, 40_000)) for i in range(40)
    }
    contents[b"f005"] = OSError(13, "denied")
    contents[b"f006"] = bytes(3000)  # a sparse file of zeros: no blob
    small = small_files.SmallFiles(repo, workers=1, hint=None)
    refs = [small.add_file(_Files(contents), p, 0, sparse=True) for p in contents]
    loose = small.add(b"already read")
    small.close()
    for path, ref in zip(contents, refs, strict=True):
        got, outcome = contents[path], ref.outcome()
        if isinstance(got, OSError):
            assert outcome is got
        elif not any(got):
            assert outcome == (None, 3000)
        else:
            assert outcome == (repo.blob_id(got), len(got))
    assert loose.result() == repo.blob_id(b"already read")
    assert len(calls) > 1 and max(calls) < small_files.STORE_BYTES + 40_000


# a batch on a full disk: test_pack_spool_full_disk.py, beside blob-by-blob adds
