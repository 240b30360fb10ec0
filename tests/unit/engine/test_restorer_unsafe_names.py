"""A tree naming an entry ``..``, ``/etc/x``, ``a/b``, ``.`` or the same name twice --
whoever made the backup wrote the trees, an agent's host too -- never makes a restore
write outside its target: that directory is refused as a damaged tree (a planned restore
refuses before writing, a streamed one restores the rest)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowvault.engine import archiver, errors, restorer
from snowvault.engine.tree import TREE_VERSION, decode_tree, node_to_dict
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)


def _evil_point(tmp_path: Path, bad: bytes, where: str) -> tuple[FakeRepository, str]:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "payload").write_bytes(b"payload")
    (src / "ok.txt").write_bytes(b"ok")
    repo = FakeRepository()
    rp = archiver.backup_paths(repo, [src], now=NOW).rp_id
    manifest = repo.load_manifest(rp)
    root = decode_tree(repo.get_blob(bytes.fromhex(manifest["tree"])))
    sub = next(n for n in root if n.name == b"sub")
    payload = decode_tree(repo.get_blob(bytes.fromhex(sub.subtree or "")))
    if where == "root":  # a directory named `bad` at the top, holding the payload file
        evil = node_to_dict(sub) | {"name": bad.decode()}
        nodes = [node_to_dict(n) for n in root] + [evil]
        if bad == b"sub":  # the same name twice
            nodes = [node_to_dict(n) for n in root] + [node_to_dict(payload[0]) | {"name": "sub"}]
        manifest["tree"] = _tree(repo, nodes)
    else:  # inside sub: a file named `bad`
        nodes = [node_to_dict(payload[0]) | {"name": bad.decode()}]
        sub_id = _tree(repo, nodes)
        manifest["tree"] = _tree(
            repo,
            [node_to_dict(n) | ({"subtree": sub_id} if n.name == b"sub" else {}) for n in root],
        )
    return repo, repo.save_manifest(manifest)


def _tree(repo: FakeRepository, nodes: list[dict[str, object]]) -> str:
    doc = {"nodes": nodes, "version": TREE_VERSION}
    return repo.add_blob("tree", json.dumps(doc).encode()).hex()


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (b"..", "root"),
        (b"..", "sub"),
        (b".", "sub"),
        (b"", "sub"),
        (b"a/b", "sub"),
        (b"/abs-evil", "root"),
        (b"../escaped", "sub"),
        (b"sub", "root"),
    ],
)
def test_an_entry_name_that_is_not_one_component_is_refused(
    tmp_path: Path, bad: bytes, where: str
) -> None:
    repo, rp = _evil_point(tmp_path, bad, where)
    box = tmp_path / "box"
    box.mkdir()
    before = sorted(os.listdir(tmp_path))

    # streamed (a new target): the directory holding the name is an error, the rest kept
    if where == "root":
        with pytest.raises(errors.IntegrityError, match=r"not a file name|twice"):
            restorer.restore(repo, rp, box / "out")
    else:
        result = restorer.restore(repo, rp, box / "out")
        [err] = result.errors
        assert err.path == "sub" and ("not a file name" in err.error)
        assert (box / "out" / "ok.txt").read_bytes() == b"ok"
        assert os.listdir(box / "out" / "sub") == []
    # planned (an include): refused before anything is written
    with pytest.raises(errors.IntegrityError):
        restorer.restore(
            repo, rp, box / "planned", include=["sub"] if where == "sub" else ["ok.txt"]
        )
    assert not (box / "planned").exists()
    assert sorted(os.listdir(box)) == (["out"] if where == "sub" else [])
    assert sorted(os.listdir(tmp_path)) == before
    assert not Path("/abs-evil").exists()
