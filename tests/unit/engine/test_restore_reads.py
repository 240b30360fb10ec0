"""A restore whose blobs come through restore_reads.RunReader (segments of packs read
into kept buffers) gives the same tree as one through Repository.get_blob, blob by
blob -- the reference path -- and reads far fewer times than there are blobs."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.helpers.tree_state import snapshot, xattrs_ok

from snowvault.engine import archiver, restore_reads, restorer
from snowvault.engine.repository import Repository
from snowvault.engine.tree import Node
from snowvault.testing.repository import small_chunk_repository

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _source(root: Path) -> None:
    rng = random.Random(1507)
    for d in range(4):
        folder = root / f"dir{d}" / "sub"
        folder.mkdir(parents=True)
        for i in range(40):
            body = rng.randbytes(rng.randrange(0, 3000)) if i % 3 else b"text %d " % i * 50
            (folder / f"f{i}.txt").write_bytes(body)
    (root / "big.bin").write_bytes(rng.randbytes(300_000))
    with open(root / "sparse.img", "wb") as fh:
        fh.write(b"head")
        fh.seek(200_000)
        fh.write(b"middle")
        fh.truncate(500_000)  # a trailing hole
    for name, mode in (("ro", 0o444), ("private", 0o600), ("suid", 0o4755), ("open", 0o777)):
        path = root / name
        path.write_bytes(name.encode() * 100)
        os.chmod(path, mode)
    if xattrs_ok(root):
        os.setxattr(root / "dir0" / "sub" / "f1.txt", "user.note", b"kept")
    os.utime(root / "big.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Repository, str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    _source(src)
    repo = small_chunk_repository(tmp_path / "repo")
    result = archiver.backup_paths(repo, [src], now=NOW)
    return repo, result.rp_id, src


@pytest.mark.parametrize(
    ("direct", "gap"), [(restore_reads.DIRECT, restore_reads.GAP), (8192, 0), (1, 1 << 20)]
)
def test_runs_read_by_segments_restore_what_blob_by_blob_restores(
    backed_up: tuple[Repository, str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direct: int,
    gap: int,
) -> None:
    repo, rp_id, src = backed_up
    monkeypatch.setattr(restore_reads, "DIRECT", direct)
    monkeypatch.setattr(restore_reads, "GAP", gap)
    reads = []
    original = restore_reads.RunReader._read

    def counting(self: restore_reads.RunReader, *args: object) -> None:
        reads.append(args[1])
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(restore_reads.RunReader, "_read", counting)
    result = restorer.restore(repo, rp_id, tmp_path / "segments")
    assert not result.errors
    blobs = {b for _, n in _file_nodes(repo, rp_id) for b, _ in n.content if b is not None}
    assert len(blobs) > 100
    if direct > 1:  # small blobs come a segment at a time
        assert 0 < len(reads) < len(blobs) / 2
    else:  # every blob read on its own
        assert len(reads) >= len(blobs)

    monkeypatch.setattr(restore_reads.RunReader, "start", classmethod(lambda cls, repo: None))
    reference = restorer.restore(repo, rp_id, tmp_path / "reference")
    assert (result.files, result.bytes) == (reference.files, reference.bytes)
    got = snapshot(tmp_path / "segments")
    assert got == snapshot(tmp_path / "reference") == snapshot(src)
    assert os.stat(tmp_path / "segments" / "sparse.img").st_blocks * 512 < 100_000


def test_a_pack_cut_short_loses_only_the_blobs_past_the_cut(
    backed_up: tuple[Repository, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp_id, src = backed_up
    monkeypatch.setattr(restore_reads, "GAP", 1 << 20)  # a segment spans the cut
    nodes = _file_nodes(repo, rp_id)
    owners: dict[str, set[bytes]] = {}
    for rel, node in nodes:
        for blob, _ in node.content:
            if blob is not None:
                owners.setdefault(blob, set()).add(rel)
    by_pack: dict[str, list[tuple[int, int, set[bytes]]]] = {}
    for blob, rels in owners.items():
        where, at, size = repo.blob_location(bytes.fromhex(blob))
        by_pack.setdefault(where, []).append((at, size, rels))
    name, blobs = max(by_pack.items(), key=lambda item: len(item[1]))
    pack = tmp_path / "repo" / name
    # inside the middle blob, not at the pack's middle byte: the blobs' order in a pack
    # follows the backup's threads, and a large blob there could put every small one on
    # one side of the middle byte (seen: nothing kept)
    blobs.sort(key=lambda blob: blob[0])
    middle_at, middle_size, _ = blobs[len(blobs) // 2]
    cut = middle_at + middle_size // 2
    pack.write_bytes(pack.read_bytes()[:cut])
    lost = {rel for at, size, rels in blobs if at + size > cut for rel in rels}
    kept = {rel for at, size, rels in blobs if at + size <= cut for rel in rels} - lost
    assert lost and kept

    result = restorer.restore(repo, rp_id, tmp_path / "out")
    assert {os.fsencode(e.path) for e in result.errors} == lost
    for rel in kept:
        assert (tmp_path / "out" / os.fsdecode(rel)).read_bytes() == (
            src / os.fsdecode(rel)
        ).read_bytes()


def _file_nodes(repo: Repository, rp_id: str) -> list[tuple[bytes, Node]]:
    out = []
    stack = [(b"", restorer.root_tree(repo, rp_id))]
    while stack:
        prefix, tree = stack.pop()
        for node in restorer.load_tree(repo, tree, prefix):
            rel = prefix + b"/" + node.name if prefix else node.name
            if node.type == "dir" and node.subtree is not None:
                stack.append((rel, node.subtree))
            elif node.type == "file":
                out.append((rel, node))
    return out


def test_runs_end_where_a_directory_ends_so_threads_create_in_different_ones() -> None:
    def files(folder: bytes, n: int, size: int = 10) -> list[tuple[bytes, Node]]:
        return [
            (folder + b"/f%d" % i, Node(name=b"f%d" % i, type="file", size=size)) for i in range(n)
        ]

    order = files(b"a", 100) + files(b"b", 3) + files(b"c/d", 70) + files(b"e", 300)
    order += files(b"f", 2, size=restorer.RUN_BYTES) + files(b"top", 1)
    runs = list(restorer._runs(order))
    assert [len(r) for r in runs] == [100, 73, restorer.RUN_MAX_FILES, 300 - 256 + 1, 1, 1]
    assert [r for run in runs for r in run] == order
    folders = [[rel.rpartition(b"/")[0] for rel, _ in run] for run in runs]
    assert folders[0][-1] != folders[1][0] and folders[1][-1] != folders[2][0]
