"""The per-process cache of what opening a repository reads (engine/index_cache.py):
a cached open reads only names it has not read before, and its index is always the one
an uncached open of the same store gives, whatever other writers did meanwhile: new
segments (another Repository object, another process), an index compaction, a prune
that deleted packs, a keyed pack's claim, a repository made again at the same place."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from snowvault.engine import (
    compression,
    errors,
    index_cache,
    index_compaction,
    keyed_packs,
    packs,
    prune,
    stream_backup,
)
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import primitives
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

KEY = b"k" * 32


class Counting(MemoryBackend):
    """A memory store that counts whole-object reads per prefix."""

    def __init__(self) -> None:
        super().__init__("counting")
        self.reads: Counter[str] = Counter()

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.reads[name.split("/", 1)[0] if "/" in name else name] += 1
        return super().get(name, offset, length)


def _add_point(repo: Repository, clock: FakeClock, n: int) -> str:
    data = random.Random(n).randbytes(2_000 + n)
    result = stream_backup.backup_stream(
        repo, f"f{n}", io.BytesIO(data), now=clock.now(), clock=clock
    )
    return result.rp_id


def _rows(repo: Repository) -> dict[bytes, object]:
    return dict(repo.master_index.items())


def _fresh(backend: MemoryBackend | LocalBackend) -> Repository:
    return Repository.open(backend, raw_key=KEY)


def test_a_second_open_reads_no_segment_record_config_or_slot_again() -> None:
    backend, clock, cache = Counting(), FakeClock(), index_cache.StoreCache()
    writer = Repository.init(backend, raw_key=KEY)
    for n in range(5):
        _add_point(writer, clock, n)
    first = Repository.open(backend, raw_key=KEY, cache=cache)
    backend.reads.clear()
    second = Repository.open(backend, raw_key=KEY, cache=cache)
    assert backend.reads == Counter()  # only listings
    assert _rows(second) == _rows(first) == _rows(_fresh(backend))
    segments = len(writer.index_segments())
    _add_point(writer, clock, 99)  # a tree and a data segment, read alone
    backend.reads.clear()
    third = Repository.open(backend, raw_key=KEY, cache=cache)
    assert backend.reads == Counter({"index": len(writer.index_segments()) - segments})
    assert _rows(third) == _rows(_fresh(backend))
    stats = cache.entry(backend.location).stats
    assert stats["index_copied"] == 1 and stats["index_extended"] == 1


def test_a_repository_opened_from_the_cache_writes_into_its_own_copy() -> None:
    backend, clock, cache = MemoryBackend(), FakeClock(), index_cache.StoreCache()
    Repository.init(backend, raw_key=KEY).close()
    one = Repository.open(backend, raw_key=KEY, cache=cache)
    _add_point(one, clock, 1)
    two = Repository.open(backend, raw_key=KEY, cache=cache)
    assert _rows(two) == _rows(one)
    extra = two.add_blob("data", b"only in two's memory until flushed")
    assert not one.has_blob(extra)  # two's writes never reach the cached snapshot
    three = Repository.open(backend, raw_key=KEY, cache=cache)
    assert not three.has_any_blob(extra)
    two.flush()
    assert Repository.open(backend, raw_key=KEY, cache=cache).has_blob(extra)


def test_compaction_by_another_repository_object_is_seen() -> None:
    backend, clock, cache = Counting(), FakeClock(), index_cache.StoreCache()
    writer = Repository.init(backend, raw_key=KEY)
    for n in range(20):
        _add_point(writer, clock, n)
    cached = Repository.open(backend, raw_key=KEY, cache=cache)
    before = _rows(cached)
    other = Repository.open(backend, raw_key=KEY)
    segments = other.index_segments()
    replaced = index_compaction.merge(other, clock)
    assert sorted(replaced) == sorted(segments)
    merged_open = Repository.open(backend, raw_key=KEY, cache=cache)  # both listed
    assert _rows(merged_open) == before == _rows(_fresh(backend))
    assert index_compaction.delete_replaced(other, replaced) == len(segments)
    backend.reads.clear()
    after = Repository.open(backend, raw_key=KEY, cache=cache)
    assert backend.reads == Counter()  # the merged segment was read once, above
    assert _rows(after) == before == _rows(_fresh(backend))
    entry = cache.entry(backend.location)
    assert set(entry.bodies) == set(other.index_segments())  # the deleted ones forgotten


def test_a_prune_by_another_repository_leaves_no_deleted_pack_in_the_index() -> None:
    backend, clock, cache = MemoryBackend(), FakeClock(), index_cache.StoreCache()
    writer = Repository.init(backend, raw_key=KEY, pack_size=4096)
    kept, dropped = _add_point(writer, clock, 1), _add_point(writer, clock, 2)
    cached = Repository.open(backend, raw_key=KEY, cache=cache)
    gone = prune.used_blobs(cached, [cached.load_manifest(dropped)])
    gone -= prune.used_blobs(cached, [cached.load_manifest(kept)])
    assert gone and all(cached.has_any_blob(b) for b in gone)
    pruner = Repository.open(backend, raw_key=KEY)
    prune.forget(pruner, [dropped])
    report = prune.prune(pruner, clock)
    assert report.packs_deleted
    again = Repository.open(backend, raw_key=KEY, cache=cache)
    assert not any(again.has_any_blob(b) for b in gone)
    assert _rows(again) == _rows(_fresh(backend))
    for blob_id in prune.used_blobs(again, [again.load_manifest(kept)]):
        again.get_blob(blob_id)  # every location it keeps is readable


def test_a_segment_written_by_another_process_is_read(tmp_path: Path) -> None:
    backend, cache = LocalBackend(str(tmp_path / "repo")), index_cache.StoreCache()
    writer = Repository.init(backend, raw_key=KEY)
    writer.add_blob("data", b"from this process")
    writer.close()
    cached = Repository.open(backend, raw_key=KEY, cache=cache)
    script = textwrap.dedent(
        f"""
        from snowvault.engine.backends.local import LocalBackend
        from snowvault.engine.repository import Repository
        repo = Repository.open(LocalBackend({str(tmp_path / "repo")!r}), raw_key={KEY!r})
        print(repo.add_blob("data", b"from another process").hex())
        repo.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    theirs = bytes.fromhex(out.stdout.strip())
    assert not cached.has_blob(theirs)
    again = Repository.open(backend, raw_key=KEY, cache=cache)
    assert again.has_blob(theirs)
    assert again.get_blob(theirs) == b"from another process"
    assert _rows(again) == _rows(_fresh(backend))


def _keyed(repo: Repository, key: keyed_packs.PackKey, blob_id: bytes, data: bytes) -> str:
    sealer = primitives.Sealer(key.key)
    kind = packs.KINDS["data"]
    sealed = sealer.seal(compression.pack(data), packs.blob_aad(kind, blob_id))
    pack_id = repo.write_pack([(kind, blob_id, sealed, len(data))], key)
    repo.add_keyed_pack(pack_id, repo.read_pack_header(pack_id))
    return pack_id


def test_the_repositorys_own_copy_wins_over_a_keyed_claim_made_earlier() -> None:
    """An agent's keyed pack claims an id first; the repository's own writer stores the
    content later (a new segment): a cached open reads the own copy, as a fresh one."""
    backend, cache = MemoryBackend(), index_cache.StoreCache()
    repo = Repository.init(backend, raw_key=KEY)
    content = b"the server's own content" * 20
    real_id = repo.blob_id(content)
    key = keyed_packs.PackKey(primitives.random_bytes(32), keyed_packs.agent_scope("1", "h"))
    _keyed(repo, key, real_id, b"garbage under a stolen id")
    cached = Repository.open(backend, raw_key=KEY, cache=cache)
    assert cached.get_blob(real_id) == b"garbage under a stolen id"  # nothing else yet
    writer = Repository.open(backend, raw_key=KEY)
    assert writer.add_blob("data", content) == real_id
    writer.flush()
    again = Repository.open(backend, raw_key=KEY, cache=cache)
    assert again.get_blob(real_id) == content
    assert _fresh(backend).get_blob(real_id) == content
    assert cache.entry(backend.location).stats["index_built"] == 2  # not extended


def test_merged_pack_key_records_keep_every_key() -> None:
    backend, cache = MemoryBackend(), index_cache.StoreCache()
    repo = Repository.init(backend, raw_key=KEY)
    scope = keyed_packs.agent_scope("1", "h")
    written = {}
    for n in range(4):
        key = keyed_packs.PackKey(primitives.random_bytes(32), scope)
        blob_id = primitives.keyed_hash(repo.scoped_id_key(scope), bytes([n]) * 50)
        written[_keyed(repo, key, blob_id, bytes([n]) * 50)] = blob_id
    merger = Repository.open(backend, raw_key=KEY, cache=cache)  # reads through the cache
    assert merger.compact_pack_keys(at=2)
    again = Repository.open(backend, raw_key=KEY, cache=cache)
    assert len(cache.entry(backend.location).records) == 1
    for pack_id, blob_id in written.items():
        assert again.pack_key(pack_id) == repo.pack_key(pack_id)
        assert again.get_blob(blob_id) == bytes([list(written).index(pack_id)]) * 50


def test_another_repository_at_the_same_place_is_not_mistaken_for_the_first() -> None:
    backend, clock, cache = MemoryBackend(), FakeClock(), index_cache.StoreCache()
    first = Repository.init(backend, raw_key=KEY)
    _add_point(first, clock, 1)
    Repository.open(backend, raw_key=KEY, cache=cache)
    for info in list(backend.list()):
        backend.delete(info.name)
    with pytest.raises(errors.RepositoryNotFound):
        Repository.open(backend, raw_key=KEY, cache=cache)
    second = Repository.init(backend, raw_key=b"j" * 32)
    _add_point(second, clock, 2)
    again = Repository.open(backend, raw_key=b"j" * 32, cache=cache)
    assert _rows(again) == _rows(Repository.open(backend, raw_key=b"j" * 32))
    with pytest.raises(errors.WrongKey):
        Repository.open(backend, raw_key=KEY, cache=cache)


def test_a_merge_through_the_cache_reads_no_segment_it_has_read() -> None:
    """The compact-index sweep's merge reads only segments new to the server's cache."""
    backend, clock, cache = Counting(), FakeClock(), index_cache.StoreCache()
    writer = Repository.init(backend, raw_key=KEY)
    for n in range(10):
        _add_point(writer, clock, n)
    before = _rows(Repository.open(backend, raw_key=KEY, cache=cache))
    backend.reads.clear()
    sweeper = Repository.open(backend, raw_key=KEY, cache=cache, load_index=False)
    replaced = index_compaction.merge(sweeper, clock)
    assert len(replaced) == 20 and backend.reads == Counter()
    index_compaction.delete_replaced(sweeper, replaced)
    after = Repository.open(backend, raw_key=KEY, cache=cache)
    assert backend.reads == Counter({"index": 1})  # the merged segment, once
    assert _rows(after) == before == _rows(_fresh(backend))
    assert len(cache.entry(backend.location).bodies) == 1


def test_the_cache_drops_the_least_recently_opened_repositories_past_its_bounds() -> None:
    clock = FakeClock()
    backends = [MemoryBackend(f"r{n}") for n in range(3)]
    for backend in backends:
        writer = Repository.init(backend, raw_key=KEY)
        for n in range(3):
            _add_point(writer, clock, n)
    one = index_cache.StoreCache()
    Repository.open(backends[0], raw_key=KEY, cache=one)
    held = one.entry(backends[0].location).size()
    assert held > 0
    by_bytes = index_cache.StoreCache(max_bytes=2 * held)  # room for two of them
    by_count = index_cache.StoreCache(max_repositories=2)
    for cache in (by_bytes, by_count):
        for backend in backends:
            Repository.open(backend, raw_key=KEY, cache=cache)
        Repository.open(backends[2], raw_key=KEY, cache=cache)  # the newest stays
        assert cache.locations() == [backends[1].location, backends[2].location]
