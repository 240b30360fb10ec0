"""A changed directory's tree written from its parent's JSON objects
(``archiver.encode_pending``) is byte for byte what ``tree.encode_tree`` gives for the
same nodes, whatever form the parent's objects have; and a rerun's trees are those of a
backup of the same tree without a parent."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, errors
from snowvault.engine.tree import Node, encode_tree, node_to_dict
from snowvault.testing import FakeRepository

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BLOB = "ab" * 32

BASE: dict[str, Any] = {
    "type": "file",
    "name": "f.txt",
    "mode": 0o644,
    "uid": 1000,
    "gid": 1000,
    "user": "u",
    "group": "g",
    "mtime_ns": 1_700_000_000_000_000_000,
    "ctime_ns": 1_700_000_000_000_000_001,
    "inode": 42,
    "device": 7,
    "size": 5,
    "content": [[BLOB, 5]],
}

# (what differs from BASE, whether it is still the canonical form)
VARIANTS: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"nlink": 3}, True),
    ({"content": [[None, 3], [BLOB, 2]]}, True),
    ({"name": "ünï cödé"}, True),
    ({"nlink": 1}, False),  # a default written out
    ({"uid": 0}, False),
    ({"rdev": 0}, False),
    ({"size": True}, False),  # true == 1 in Python, not in JSON
    ({"size": 5.0}, False),
    ({"mtime_ns": float(1 << 60)}, False),
    ({"user": None}, False),
    ({"content": []}, False),
    ({"content": [(BLOB, 5)]}, False),
    ({"xattrs": [["user.a", "eA=="]]}, False),
    ({"target": "x"}, False),
    ({"subtree": BLOB}, False),
    ({"extra": {"k": 1}}, False),
    ({"unknown": 1}, False),
    ({"type": "symlink", "target": "f", "content": None}, False),
]


def _variant(change: dict[str, Any], name: str) -> dict[str, Any]:
    raw = dict(BASE, name=name)
    for key, value in change.items():
        if value is None and key == "content":
            del raw[key]
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(("change", "canonical"), VARIANTS)
def test_a_parent_object_is_taken_as_it_is_only_when_canonical(
    change: dict[str, Any], canonical: bool
) -> None:
    raw = _variant(change, change.get("name", "f.txt"))
    assert archiver._canonical_file(raw) is canonical
    pending = archiver._PendingNode(None, raw=raw)
    expected = encode_tree([archiver._resolve(archiver._PendingNode(None, raw=dict(raw)))])
    assert archiver.encode_pending([pending]) == expected


def test_a_malformed_parent_node_fails_the_backup_as_before() -> None:
    raw = _variant({"content": [[BLOB, 5, 0]]}, "bad")
    assert not archiver._canonical_file(raw)
    with pytest.raises(errors.IntegrityError, match="bad node"):
        archiver.encode_pending([archiver._PendingNode(None, raw=raw)])


def test_a_mixed_directory_encodes_as_encode_tree_does() -> None:
    pnodes = []
    for i, (change, _) in enumerate(VARIANTS):
        pnodes.append(archiver._PendingNode(None, raw=_variant(change, f"n{i:02d}\u00e9")))
    new = Node(name=b"\xff-not-utf8", type="file", size=1, content=((BLOB, 1),))
    pnodes.append(archiver._PendingNode(new, parts=[(BLOB, 1)]))
    dropped = archiver._PendingNode(Node(name=b"gone", type="file"), dropped=True)
    pnodes.append(dropped)
    pnodes.reverse()  # the walk's order is not the tree's
    resolved = [
        archiver._resolve(archiver._PendingNode(pn.node, parts=pn.parts, raw=pn.raw))
        for pn in pnodes
        if not pn.dropped
    ]
    assert archiver.encode_pending(pnodes) == encode_tree(resolved)
    twice = [archiver._PendingNode(None, raw=dict(BASE)), archiver._PendingNode(None, raw=BASE)]
    with pytest.raises(ValueError, match="duplicate"):
        archiver.encode_pending(twice)
    assert node_to_dict(resolved[-1]) is not None


def test_a_rerun_writes_the_trees_a_backup_without_parent_writes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for d in range(4):
        folder = src / f"d{d}"
        folder.mkdir(parents=True)
        for i in range(25):
            (folder / f"f{i:02d}").write_bytes(bytes([d, i]) * (i + 1))
    os.link(src / "d0" / "f00", src / "d1" / "hard")
    os.symlink("d0/f01", src / "link")
    repo: Any = FakeRepository()
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    for d in range(4):  # one file touched, one rewritten per directory
        os.utime(src / f"d{d}" / "f03", ns=(1, 2))
        (src / f"d{d}" / "f04").write_bytes(b"new")
    rerun = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, walkers=0, processes=0)
    fresh = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    assert rerun.manifest.tree == fresh.manifest.tree
    assert rerun.manifest.tree != first.manifest.tree
    assert rerun.manifest.summary.files_unchanged == 100 + 1 - 8
