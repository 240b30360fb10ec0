"""On a local store blob threads append to open packs of their own at once (outside the
pack lock): whatever the interleaving, every pack is named by its bytes' SHA-256, every
index entry points at its blob, each blob is stored once, and a backup's packs are all
published at flush."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

from snowvault.engine.backends.local import TEMP_PREFIX, LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository

KDF = KdfParams.for_tests()


def test_threads_fill_packs_at_once_and_every_blob_reads_back(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "repo")
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=64 * 1024, workers=4)
    rng = random.Random(5)
    payloads = [rng.randbytes(rng.randrange(1_000, 30_000)) for _ in range(200)]
    payloads += payloads[:20]  # repeats: stored once
    ids: dict[int, bytes] = {}
    start = threading.Barrier(4)

    def add(part: int) -> None:
        start.wait()
        for i in range(part, len(payloads), 4):
            ids[i] = repo.add_blob("data", payloads[i])

    threads = [threading.Thread(target=add, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    small = repo.add_blobs("data", [b"tiny-%d" % i for i in range(50)])  # a run, under the lock
    repo.close()
    assert not [p for p in (tmp_path / "repo").rglob("*") if p.name.startswith(TEMP_PREFIX)]
    entries = []
    for info in backend.list("data/"):
        path = tmp_path / "repo" / info.name
        assert info.name.rsplit("/", 1)[-1] == hashlib.sha256(path.read_bytes()).hexdigest()
        entries += [e.blob_id for e in repo.read_pack_header(info.name.rsplit("/", 1)[-1])]
    assert sorted(entries) == sorted(set(ids.values()) | set(small))  # each blob once
    reopened = Repository.open(LocalBackend(tmp_path / "repo"), password="pw")
    assert [reopened.get_blob(ids[i]) for i in range(len(payloads))] == payloads
    assert [reopened.get_blob(b) for b in small] == [b"tiny-%d" % i for i in range(50)]
