"""Packs filled in temporary files of a local store (engine/pack_spool.py)."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

from snowvault.engine import packs
from snowvault.engine.backends.local import TEMP_PREFIX, LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.pack_spool import PackSpool
from snowvault.engine.repository import Repository, spool_root

KDF = KdfParams.for_tests()


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_a_local_repository_spools_packs_and_reads_them_back(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "repo")
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=64 * 1024)
    payloads = [random.Random(i).randbytes(20_000 + i) for i in range(12)]
    ids = [repo.add_blob_async("data", p).result() for p in payloads]
    assert _temps(tmp_path)  # the open pack is a temporary file, not listed
    repo.close()
    assert _temps(tmp_path) == []
    names = [info.name for info in backend.list("data/")]
    assert len(names) >= 3  # 240 KB of incompressible blobs in 64 KiB packs
    for name in names:
        path = tmp_path / "repo" / name
        assert name.rsplit("/", 1)[-1] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
        assert path.parent.name == name.rsplit("/", 1)[-1][:2]
    reopened = Repository.open(LocalBackend(tmp_path / "repo"), password="pw")
    assert [reopened.get_blob(i) for i in ids] == payloads
    pack_id = names[0].rsplit("/", 1)[-1]
    header = reopened.read_pack_header(pack_id)  # the header written by the spool
    assert header and all(e.kind == packs.KIND_DATA for e in header)


def test_only_a_plain_local_store_or_one_that_says_so_is_spooled(tmp_path: Path) -> None:
    class Counting(LocalBackend):
        def __init__(self, root: Path) -> None:
            super().__init__(root)
            self.puts: list[str] = []

        def put(self, name: str, data: bytes | bytearray) -> None:
            self.puts.append(name)
            super().put(name, data)

    class Spooling(Counting):
        SPOOL_PACKS = True

    assert spool_root(LocalBackend(tmp_path / "a")) == str(tmp_path / "a")
    counting, spooling = Counting(tmp_path / "b"), Spooling(tmp_path / "c")
    assert spool_root(counting) is None
    assert spool_root(spooling) == str(tmp_path / "c")
    for backend in (counting, spooling):
        repo = Repository.init(backend, password="pw", kdf=KDF)
        repo.add_blob("data", b"x" * 5000)
        repo.close()
    assert any(n.startswith("data/") for n in counting.puts)  # a fault-injecting subclass
    assert not any(n.startswith("data/") for n in spooling.puts)  # sees every pack put
    assert any(n.startswith("index/") for n in spooling.puts)


def test_publishing_the_same_bytes_twice_keeps_one_object(tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        spool = PackSpool.create(str(tmp_path))
        spool.write(b"nonce", bytearray(b"sealed"), memoryview(b"more"))
        ids.append(spool.publish(b"header"))
    assert ids[0] == ids[1] == hashlib.sha256(b"noncesealedmoreheader").hexdigest()
    final = tmp_path / "data" / ids[0][:2] / ids[0]
    assert final.read_bytes() == b"noncesealedmoreheader"
    assert _temps(tmp_path) == []


def test_a_discarded_spool_leaves_nothing(tmp_path: Path) -> None:
    spool = PackSpool.create(str(tmp_path))
    spool.write(b"abc" * 1000)
    assert spool.size == 3000
    assert len(_temps(tmp_path)) == 1
    spool.discard()
    spool.discard()  # twice is harmless
    assert _temps(tmp_path) == []
    assert os.listdir(tmp_path / "data") == []


def test_a_repository_dropped_unflushed_leaves_no_temporary_file_open(tmp_path: Path) -> None:
    import gc

    repo = Repository.init(LocalBackend(tmp_path / "repo"), password="pw", kdf=KDF)
    repo.add_blob("data", random.Random(3).randbytes(5000))  # a pack is open, not flushed
    (temp,) = _temps(tmp_path)
    opened = set(os.listdir("/proc/self/fd"))
    del repo  # a failed backup's repository, never closed
    gc.collect()
    assert not temp.exists()
    assert len(set(os.listdir("/proc/self/fd"))) < len(opened)  # its descriptor closed
