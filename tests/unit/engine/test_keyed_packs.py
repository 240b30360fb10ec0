"""Keyed packs (repository-format.md, "Keyed packs"): packs sealed under a pack key of
their own, with blob ids in a scope, read, checked, pruned and copied like any other;
and a keyed pack's claim to an id the repository's own writer makes never wins."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from snowvault.engine import check, compression, errors, keyed_packs, packs, prune, tree
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import primitives
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

SCOPE = keyed_packs.agent_scope("111122223333", "web-1")


def _repo(backend: MemoryBackend | None = None) -> Repository:
    return Repository.init(backend or MemoryBackend(), raw_key=b"k" * 32)


def _keyed_pack(
    repo: Repository, key: keyed_packs.PackKey, blobs: list[tuple[str, bytes]], id_key: bytes
) -> tuple[str, list[bytes]]:
    """What an agent does: ids under the scoped key, blobs and header under the pack
    key, the record first, then the pack, then the server indexes its header."""
    sealer = primitives.Sealer(key.key)
    rows, ids = [], []
    for kind, data in blobs:
        blob_id = primitives.keyed_hash(id_key, data)
        k = packs.KINDS[kind]
        rows.append(
            (k, blob_id, sealer.seal(compression.pack(data), packs.blob_aad(k, blob_id)), len(data))
        )
        ids.append(blob_id)
    pack_id = repo.write_pack(rows, key)
    repo.add_keyed_pack(pack_id, repo.read_pack_header(pack_id))
    return pack_id, ids


def test_a_keyed_pack_reads_checks_and_verifies_in_its_scope() -> None:
    repo = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    scoped = repo.scoped_id_key(SCOPE)
    assert scoped != repo.delegated_id_key()
    pack_id, ids = _keyed_pack(repo, key, [("data", b"alpha" * 100), ("data", b"beta")], scoped)
    assert repo.get_blob(ids[0]) == b"alpha" * 100
    assert repo.pack_reader().get_blob(ids[1]) == b"beta"
    assert repo.verify_blob_id(ids[1], b"beta", pack_id)
    assert not repo.verify_blob_id(ids[1], b"beta")  # not an id of the repository's own
    assert not repo.has_blob(ids[0]) and repo.has_any_blob(ids[0])
    # a reopened repository finds the key from its record
    again = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert again.get_blob(ids[0]) == b"alpha" * 100
    assert again.pack_key(pack_id) == key
    report = check.check(again, read_data=True)
    assert report.ok, report.problems


def test_check_read_data_finds_a_keyed_blob_under_a_wrong_id() -> None:
    repo = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    wrong = hashlib.sha256(b"not the scope").digest()  # ids under another key
    _keyed_pack(repo, key, [("data", b"gamma")], wrong)
    report = check.check(Repository.open(repo.backend, raw_key=b"k" * 32), read_data=True)
    assert not report.ok
    assert any("hash mismatch" in str(p) for p in report.problems)


def test_a_keyed_claim_on_an_id_of_the_repository_never_wins() -> None:
    """A malicious agent that knows the id the repository gives some content stores
    garbage under it; the repository's own writer does not deduplicate against it, and
    every reader, before and after a reopen, gets the writer's copy."""
    repo = _repo()
    content = b"the server's content" * 50
    real_id = repo.blob_id(content)
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    sealer = primitives.Sealer(key.key)
    garbage = sealer.seal(compression.pack(b"garbage"), packs.blob_aad(0, real_id))
    pack_id = repo.write_pack([(0, real_id, garbage, 7)], key)
    repo.add_keyed_pack(pack_id, repo.read_pack_header(pack_id))
    assert repo.get_blob(real_id) == b"garbage"  # before the writer stores it: the claim
    assert real_id not in repo.own_blob_ids()  # never deduplicated against
    assert repo.add_blob("data", content) == real_id
    repo.flush()
    assert repo.get_blob(real_id) == content
    assert real_id in repo.own_blob_ids()
    assert Repository.open(repo.backend, raw_key=b"k" * 32).get_blob(real_id) == content
    # and a prune keeps the writer's copy, whichever pack id sorts first
    nodes = [tree.Node(name=b"f", type="file", size=len(content), content=((real_id.hex(), 1000),))]
    repo.save_manifest({"tree": repo.add_blob("tree", tree.encode_tree(nodes)).hex()})
    prune.prune(Repository.open(repo.backend, raw_key=b"k" * 32), FakeClock())
    pruned = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert pruned.get_blob(real_id) == content
    assert check.check(pruned, read_data=True).ok


def test_prune_repacks_a_keyed_pack_keyed_and_drops_dead_records() -> None:
    repo = _repo()
    clock = FakeClock()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    scoped = repo.scoped_id_key(SCOPE)
    big = primitives.random_bytes(4000)
    pack_id, ids = _keyed_pack(repo, key, [("data", big), ("data", b"small")], scoped)
    rp = repo.save_manifest({"tree": repo.add_blob("tree", tree.encode_tree([])).hex()})
    assert rp
    # nothing references the keyed blobs: the pack and its record go
    report = prune.prune(Repository.open(repo.backend, raw_key=b"k" * 32), clock)
    assert report.packs_deleted == 1
    assert not list(repo.backend.list(keyed_packs.PREFIX))
    # a keyed pack one of whose blobs is used is repacked keyed, its record follows it
    repo = Repository.open(repo.backend, raw_key=b"k" * 32)
    pack_id, ids = _keyed_pack(repo, key, [("data", big), ("data", b"small")], scoped)
    nodes = [tree.Node(name=b"f", type="file", mode=0o644, size=5, content=((ids[1].hex(), 5),))]
    rp = repo.save_manifest({"tree": repo.add_blob("tree", tree.encode_tree(nodes)).hex()})
    opened = Repository.open(repo.backend, raw_key=b"k" * 32)
    used = prune.used_blobs(opened, [opened.load_manifest(rp)])
    assert ids[1] in used
    report = prune.prune(opened, clock)
    assert report.packs_repacked == 1
    after = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert after.get_blob(ids[1]) == b"small"
    new_packs = [p for p in after.pack_keys() if p != pack_id]
    assert new_packs and all(after.pack_key(p) == key for p in new_packs)
    assert check.check(after, read_data=True).ok


def test_a_copy_of_a_keyed_point_reads_like_any_other() -> None:
    src = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    _pack_id, ids = _keyed_pack(src, key, [("data", b"copied bytes")], src.scoped_id_key(SCOPE))
    reader = src.pack_reader()
    dst = _repo()
    assert dst.add_blob("data", reader.get_blob(ids[0])) == dst.blob_id(b"copied bytes")


def test_a_damaged_record_is_an_integrity_error() -> None:
    repo = _repo()
    repo.backend.put(keyed_packs.PREFIX + "00" * 32, b"not sealed at all, long enough")
    with pytest.raises(Exception, match="pack-key record"):
        Repository.open(repo.backend, raw_key=b"k" * 32)


def test_prune_merges_the_records_of_one_key() -> None:
    repo = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    scoped = repo.scoped_id_key(SCOPE)
    _p1, first = _keyed_pack(repo, key, [("data", b"one")], scoped)
    _p2, second = _keyed_pack(repo, key, [("data", b"two")], scoped)
    repo.add_blob("data", b"unused")  # something for prune to do
    nodes = [
        tree.Node(name=b"a", type="file", size=3, content=((first[0].hex(), 3),)),
        tree.Node(name=b"b", type="file", size=3, content=((second[0].hex(), 3),)),
    ]
    repo.save_manifest({"tree": repo.add_blob("tree", tree.encode_tree(nodes)).hex()})
    assert len(list(repo.backend.list(keyed_packs.PREFIX))) == 2
    prune.prune(Repository.open(repo.backend, raw_key=b"k" * 32), FakeClock())
    assert len(list(repo.backend.list(keyed_packs.PREFIX))) == 1
    after = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert (after.get_blob(first[0]), after.get_blob(second[0])) == (b"one", b"two")
    assert check.check(after, read_data=True).ok


def test_a_pack_two_records_key_differently_is_opened_with_neither() -> None:
    """Two jobs of one agent that name the same pack id at once leave two records with
    different keys: that pack reads as damaged, every other pack as ever."""
    repo = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    other = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    pack_id, ids = _keyed_pack(repo, key, [("data", b"mine")], repo.scoped_id_key(SCOPE))
    _fine, fine_ids = _keyed_pack(repo, other, [("data", b"fine")], repo.scoped_id_key(SCOPE))
    repo.put_pack_keys([pack_id], other)
    again = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert again.pack_key(pack_id) is None
    assert again.get_blob(fine_ids[0]) == b"fine"
    with pytest.raises(errors.IntegrityError):
        again.get_blob(ids[0])


def test_a_writer_merges_many_records_into_one() -> None:
    """An agent job writes one record per pack and every open reads them all: at
    COMPACT_RECORDS a writer merges them (several keys into one record)."""
    repo = _repo()
    scoped = repo.scoped_id_key(SCOPE)
    made = []
    for n in range(keyed_packs.COMPACT_RECORDS):
        key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
        made.append(_keyed_pack(repo, key, [("data", b"blob %d" % n)], scoped)[1][0])
    opened = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert opened.compact_pack_keys()
    assert len(list(repo.backend.list(keyed_packs.PREFIX))) == 1
    assert not opened.compact_pack_keys()  # one record: nothing to do
    after = Repository.open(repo.backend, raw_key=b"k" * 32)
    assert [after.get_blob(b) for b in made] == [b"blob %d" % n for n in range(len(made))]
    assert check.check(after, read_data=True).ok


def test_a_record_of_the_first_layout_reads_as_one_group() -> None:
    """Records written before groups existed ({version, packs, key, scope}) still open."""
    repo = _repo()
    key = keyed_packs.PackKey(primitives.random_bytes(32), SCOPE)
    body = {
        "version": 1,
        "packs": ["ab" * 32],
        "key": base64.b64encode(key.key).decode(),
        "scope": SCOPE,
    }
    sealer = repo._sealer()
    data = sealer.seal(json.dumps(body).encode(), keyed_packs.RECORD_AAD)
    assert keyed_packs.decode_record(sealer, data) == [(["ab" * 32], key)]
