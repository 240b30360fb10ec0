"""engine.prune.packs_of: exactly the packs a recovery point's trees and chunks live in."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from snowvault.engine import archiver, packs, prune
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_packs_of_names_every_pack_a_point_needs_and_no_other(tmp_path: Path) -> None:
    repo = Repository.init(
        MemoryBackend(), password="pw", kdf=KdfParams.for_tests(), pack_size=4096
    )
    one, two = tmp_path / "one", tmp_path / "two"
    for root, seed in ((one, 1), (two, 2)):
        root.mkdir()
        (root / "own.bin").write_bytes(random.Random(seed).randbytes(30_000))
    first = archiver.backup_paths(repo, [str(one)], now=NOW)
    second = archiver.backup_paths(repo, [str(two)], now=NOW)
    manifest = repo.load_manifest(first.rp_id)
    needed = prune.packs_of(repo, manifest)
    blobs = prune.used_blobs(repo, [manifest])
    assert needed == {repo.blob_location(b)[0] for b in blobs}
    assert all(name.startswith("data/") for name in needed)
    other = prune.packs_of(repo, repo.load_manifest(second.rp_id))
    every = {packs.pack_name(pack_id) for pack_id, _ in repo.list_packs()}
    assert needed <= every and other <= every
    assert needed != every  # the second point's own data is elsewhere
