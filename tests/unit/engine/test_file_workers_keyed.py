"""The worker processes deduplicate only against the repository's own blobs: a keyed
pack's id is its writer's word (an agent's), so a malicious agent's garbage under the id
of some content must not stand in for that content in a backup by worker processes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from snowvault.engine import archiver, check, compression, keyed_packs, packs, restorer
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import primitives
from snowvault.engine.repository import Repository
from snowvault.testing.repository import SMALL_CHUNKS

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_worker_processes_store_their_own_copy_of_an_id_a_keyed_pack_claims(
    tmp_path: Path,
) -> None:
    repo = Repository.init(MemoryBackend(), raw_key=b"k" * 32, chunker=SMALL_CHUNKS)
    content = b"a file the agent guessed\n" * 40  # one chunk (below the minimum size)
    real_id = repo.blob_id(content)
    key = keyed_packs.PackKey(
        primitives.random_bytes(32), keyed_packs.agent_scope("111122223333", "web-1")
    )
    garbage = primitives.Sealer(key.key).seal(
        compression.pack(b"garbage"), packs.blob_aad(packs.KIND_DATA, real_id)
    )
    pack_id = repo.write_pack([(packs.KIND_DATA, real_id, garbage, 7)], key)
    repo.add_keyed_pack(pack_id, repo.read_pack_header(pack_id))
    src = tmp_path / "src"
    src.mkdir()
    (src / "guessed.txt").write_bytes(content)

    made = archiver.backup_paths(repo, [src], now=NOW, processes=2)

    assert made.manifest.summary.bytes_added > 0  # stored, not deduplicated away
    reopened = Repository.open(repo.backend, raw_key=b"k" * 32)
    out = tmp_path / "out"
    restorer.restore(reopened, made.rp_id, out)
    assert (out / "guessed.txt").read_bytes() == content
    problems = check.check(reopened, read_data=True).problems
    assert all(pack_id in str(p) for p in problems)  # only the agent's pack is named
