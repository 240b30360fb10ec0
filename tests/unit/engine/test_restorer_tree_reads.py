"""A streamed restore from a local repository reads its trees through the restore's own
pack reads (pack files kept open), not an open, read and close of a pack per tree
through the backend; a damaged tree is still an error naming its directory, and the
rest is restored."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.helpers.tree_state import snapshot

from snowvault.engine import archiver, restorer
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.repository import Repository
from snowvault.engine.tree import decode_tree
from snowvault.testing.repository import small_chunk_repository

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
DIRS = 12


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Repository, str, Path]:
    src = tmp_path / "src"
    for d in range(DIRS):
        folder = src / f"d{d}" / "inner"
        folder.mkdir(parents=True)
        (folder / "f.txt").write_bytes(b"file %d " % d * 40)
        (src / f"d{d}" / "g.txt").write_bytes(b"g%d" % d)
    repo = small_chunk_repository(tmp_path / "repo")
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id, src


def test_trees_are_not_read_one_backend_get_each(
    backed_up: tuple[Repository, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp_id, src = backed_up
    pack_gets: list[str] = []
    original = LocalBackend.get

    def counting(self: LocalBackend, name: str, *args: object, **kwargs: object) -> bytes:
        if name.startswith("data/"):
            pack_gets.append(name)
        return original(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalBackend, "get", counting)
    out = tmp_path / "out"
    result = restorer.restore(repo, rp_id, out)
    assert result.errors == []
    assert snapshot(out) == snapshot(src)
    # the root tree only (read before the walk); 2 * DIRS + 1 trees below it
    assert len(pack_gets) == 1


def _damage(repo: Repository, blob_id: bytes) -> None:
    loc = repo.locate(blob_id)
    path = os.path.join(str(repo.backend.root), "data", loc.pack_id[:2], loc.pack_id)  # type: ignore[attr-defined]
    with open(path, "r+b") as fh:
        fh.seek(loc.offset + loc.length // 2)
        byte = fh.read(1)
        fh.seek(loc.offset + loc.length // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_tree_read_this_way_names_its_directory(
    backed_up: tuple[Repository, str, Path], tmp_path: Path
) -> None:
    repo, rp_id, src = backed_up
    root = decode_tree(repo.get_blob(bytes.fromhex(repo.load_manifest(rp_id)["tree"])))
    d3 = next(n for n in root if n.name == b"d3")
    _damage(repo, bytes.fromhex(d3.subtree or ""))
    out = tmp_path / "out"
    result = restorer.restore(repo, rp_id, out)
    [err] = result.errors
    assert err.path == "d3" and "directory /d3" in err.error and "damaged" in err.error
    assert (out / "d4" / "inner" / "f.txt").read_bytes() == (
        src / "d4" / "inner" / "f.txt"
    ).read_bytes()
    assert not (out / "d3" / "g.txt").exists()
