"""Chunker.with_parent: a changed file's chunks that are its parent version's, unchanged,
come out as Known (not cut, not stored again), and the cuts are those the plain chunker
makes of the new file, whatever the change (appended, rewritten in places, cut short,
shifted, a byte right after a cut)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from snowvault.engine import archiver
from snowvault.engine.chunker import Chunker, ChunkerParams, Known, ParentCuts, all_zero
from snowvault.testing.repository import FakeRepository

PARAMS = ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=7)
NOW = archiver.SystemClock().now()


def _data(rng: random.Random, size: int) -> bytes:
    parts = []
    while sum(map(len, parts)) < size:  # random runs, zero runs (holes) and repeats
        kind = rng.random()
        n = rng.randrange(1, 3000)
        parts.append(rng.randbytes(n) if kind < 0.6 else bytes(n) if kind < 0.9 else b"ab" * n)
    return b"".join(parts)[:size]


def _parts(chunker: Chunker, path: Path) -> list[tuple[str | None, int]]:
    """The plain chunker's parts of a file: ids (sha256, as FakeRepository names them),
    a zero chunk as a hole."""
    return [
        (None if all_zero(c) else hashlib.sha256(c).hexdigest(), len(c))
        for c in chunker.chunks_of_file(str(path))
    ]


def _same(stored: set[str]) -> Callable[[str | None, memoryview], bool]:
    def same(ref: str | None, view: memoryview) -> bool:
        if ref is None:
            return all_zero(view)
        return hashlib.sha256(view).hexdigest() == ref and ref in stored

    return same


def _changes(rng: random.Random, old: bytes) -> dict[str, bytes]:
    cut = rng.randrange(1, len(old))
    edits = bytearray(old)
    for _ in range(3):
        at = rng.randrange(len(old) - 8)
        edits[at : at + 8] = rng.randbytes(8)
    return {
        "same": old,
        "appended": old + rng.randbytes(rng.randrange(1, 5000)),
        "rewritten": bytes(edits),
        "truncated": old[:cut],
        "inserted": old[:cut] + b"x" + old[cut:],
        "deleted": old[:cut] + old[cut + 1 :],
        "prefixed": b"y" + old,
    }


@pytest.mark.parametrize("seed", range(12))
def test_the_cuts_are_the_plain_chunkers_and_unchanged_chunks_are_known(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    chunker = Chunker(PARAMS)
    old_path = tmp_path / "old"
    old = _data(rng, rng.randrange(3000, 40_000))
    old_path.write_bytes(old)
    parent = _parts(chunker, old_path)
    stored = {ref for ref, _ in parent if ref is not None}
    for name, new in _changes(rng, old).items():
        path = tmp_path / name
        path.write_bytes(new)
        plain = [len(c) for c in chunker.chunks_of_file(str(path))]
        hinted = chunker.with_parent(ParentCuts(parent, _same(stored)))
        cuts: list[int] = []
        known = 0
        held: list[tuple[memoryview, int]] = []
        pos = 0
        for item in hinted.views_of_file(str(path)):
            for view, at in held:  # views still valid until the next None
                assert bytes(view) == new[at : at + len(view)]
            if item is None:
                held.clear()
                continue
            if isinstance(item, Known):
                chunk = new[pos : pos + item.length]
                assert item.ref == (None if all_zero(chunk) else hashlib.sha256(chunk).hexdigest())
                assert (item.ref, item.length) in parent[:-1]  # never the parent's last
                known += 1
                length = item.length
            else:
                held.append((item, pos))
                length = len(item)
            cuts.append(length)
            pos += length
        assert cuts == plain, name
        assert pos == len(new)
        if name in ("same", "appended") and len(parent) > 2:
            assert known == len(parent) - 1  # all but the last (cut by the end of the file)
        if name == "prefixed":  # shifted: only runs of zeros or repeats may line up
            assert known < len(parent) // 2


def test_a_hole_is_known_only_where_the_plain_path_finds_one(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(10_000))
    chunker = Chunker(PARAMS)
    parent = _parts(chunker, path)
    assert all(ref is None for ref, _ in parent) and len(parent) > 2

    def not_sparse(ref: str | None, view: memoryview) -> bool:
        return ref is not None and hashlib.sha256(view).hexdigest() == ref

    items = list(chunker.with_parent(ParentCuts(parent, not_sparse)).views_of_file(str(path)))
    assert not any(isinstance(i, Known) for i in items)
    items = list(chunker.with_parent(ParentCuts(parent, _same(set()))).views_of_file(str(path)))
    assert sum(isinstance(i, Known) for i in items) == len(parent) - 1


def test_a_chunk_not_in_the_repository_is_cut_and_stored(tmp_path: Path) -> None:
    rng = random.Random(3)
    path = tmp_path / "f"
    path.write_bytes(rng.randbytes(20_000))
    chunker = Chunker(PARAMS)
    parent = _parts(chunker, path)
    items = list(chunker.with_parent(ParentCuts(parent, _same(set()))).views_of_file(str(path)))
    assert not any(isinstance(i, Known) for i in items)


def test_a_rerun_of_a_grown_file_stores_only_its_new_chunks_and_the_same_tree(
    tmp_path: Path,
) -> None:
    rng = random.Random(11)
    src = tmp_path / "src"
    src.mkdir()
    log = src / "service.log"
    log.write_bytes(_data(rng, 200_000))
    repo = FakeRepository(PARAMS)
    first = archiver.backup_paths(repo, [src], now=NOW)
    with log.open("ab") as out:
        out.write(rng.randbytes(3000))
    before = repo.add_calls["data"]
    second = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id)
    stores = repo.add_calls["data"] - before
    fresh = FakeRepository(PARAMS)
    plain = archiver.backup_paths(fresh, [src], now=NOW)
    assert second.manifest.tree == plain.manifest.tree  # the same chunks
    assert stores * 10 < fresh.add_calls["data"]  # the unchanged chunks were not stored
    assert second.manifest.summary.bytes_read == log.stat().st_size


def test_a_changed_byte_right_after_a_cut_is_cut_anew(tmp_path: Path) -> None:
    """FastCDC's cut at L hashes byte L too: a chunk whose own bytes are unchanged is not
    the parent's when the byte after it changed (plain cutting no longer cuts there)."""
    rng = random.Random(5)
    chunker = Chunker(PARAMS)
    old = rng.randbytes(30_000)
    old_path = tmp_path / "old"
    old_path.write_bytes(old)
    parent = _parts(chunker, old_path)
    stored = {ref for ref, _ in parent if ref is not None}
    cut = 0
    moved = 0
    for _, length in parent[:-1]:
        cut += length
        new = old[:cut] + bytes([old[cut] ^ 0x5A]) + old[cut + 1 :]
        path = tmp_path / f"at{cut}"
        path.write_bytes(new)
        plain = [len(c) for c in chunker.chunks_of_file(str(path))]
        hinted = chunker.with_parent(ParentCuts(parent, _same(stored)))
        items = hinted.views_of_file(str(path))
        cuts = [i.length if isinstance(i, Known) else len(i) for i in items if i is not None]
        assert cuts == plain, cut
        moved += cut not in _offsets(plain)
        path.unlink()
    assert moved > 0  # some of the changed bytes did move a cut


def _offsets(lengths: list[int]) -> set[int]:
    out, pos = set(), 0
    for n in lengths:
        pos += n
        out.add(pos)
    return out


@pytest.mark.parametrize(
    "params",
    [
        PARAMS,
        ChunkerParams(min_size=256, avg_size=320, max_size=4096, seed=0x7FFFFFF0),
        ChunkerParams(min_size=1000, avg_size=1024, max_size=1024, seed=0),
    ],
)
def test_cuts_at_says_where_fastcdc_cuts_and_nowhere_before(params: ChunkerParams) -> None:
    """Chunker.cuts_at, offset by offset, against FastCDC over the whole buffer: true at
    each cut, false at every offset before it, near the end of the data too."""
    rng = random.Random(params.seed % 1000)
    chunker = Chunker(params)
    data = _data(rng, 30 * params.max_size) + rng.randbytes(rng.randrange(params.max_size))
    whole = [len(c) for c in chunker.chunks_of_bytes(data)]
    pos = 0
    for length in whole[:-1]:
        view = memoryview(data)[pos:]
        for at in range(length + 1):
            assert chunker.cuts_at(view, at) == (at == length), (pos, at, length)
        pos += length
