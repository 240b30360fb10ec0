"""Browse recovery points without restoring: list a directory, diff two points.

Reads only tree blobs, each through :func:`restorer.load_tree`, so a directory naming an
entry ``..``, ``/abs``, ``a/b`` (or one name twice: whoever made the backup wrote the
tree) is refused as damaged, as a restore refuses it, never shown or followed as a path
(``tree.check_names``). ``diff`` skips subtrees whose ids are equal on both sides, so
comparing two backups of a mostly unchanged source reads little.

    for e in ls(repo, rp_id, "/etc", recursive=True): print(e.path, e.size)
    for c in diff(repo, older, newer): print(c.kind, c.path)

Knows nothing of the control plane; never prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from snowvault.core import errors as core_errors
from snowvault.engine.restorer import TreeSource, load_tree, root_tree
from snowvault.engine.tree import Node


@dataclass(frozen=True)
class Entry:
    path: str
    type: str
    size: int
    mode: int
    mtime: datetime
    raw_path: bytes = b""


@dataclass(frozen=True)
class Change:
    path: str
    kind: str
    """``+`` added, ``-`` removed, ``M`` content or metadata changed, ``T`` type changed."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _entry(raw: bytes, node: Node) -> Entry:
    mtime = _EPOCH + timedelta(microseconds=node.mtime_ns // 1000)
    text = "/" + raw.decode("utf-8", "backslashreplace")
    return Entry(text, node.type, node.size, node.mode, mtime, b"/" + raw)


def _find_dir(repo: TreeSource, rp_id: str, path: str) -> tuple[str, bytes, Node | None]:
    """(tree id, raw path, node) of ``path``; node is None for the root or a directory."""
    tree_id = root_tree(repo, rp_id)
    parts = [p for p in os.fsencode(path).split(b"/") if p and p != b"."]
    for i, part in enumerate(parts):
        here = b"/".join(parts[:i])
        node = next((n for n in load_tree(repo, tree_id, here) if n.name == part), None)
        if node is None:
            raise core_errors.NotFound(kind="path in the recovery point", name=path)
        if node.type != "dir":
            if i != len(parts) - 1:
                raise core_errors.NotFound(kind="directory in the recovery point", name=path)
            return tree_id, b"/".join(parts), node
        assert node.subtree is not None
        tree_id = node.subtree
    return tree_id, b"/".join(parts), None


def ls(repo: TreeSource, rp_id: str, path: str = "/", recursive: bool = False) -> list[Entry]:
    """Entries of the directory ``path`` (or the one entry if ``path`` is not a directory)."""
    tree_id, raw, node = _find_dir(repo, rp_id, path)
    if node is not None:
        return [_entry(raw, node)]
    return list(_walk(repo, tree_id, raw, recursive))


def _walk(repo: TreeSource, tree_id: str, raw: bytes, recursive: bool) -> Iterator[Entry]:
    for node in load_tree(repo, tree_id, raw):
        child = raw + b"/" + node.name if raw else node.name
        yield _entry(child, node)
        if recursive and node.type == "dir" and node.subtree is not None:
            yield from _walk(repo, node.subtree, child, recursive)


def _changed(a: Node, b: Node) -> bool:
    if a.type == "dir":
        return (a.mode, a.uid, a.gid, a.xattrs) != (b.mode, b.uid, b.gid, b.xattrs)
    return (a.content, a.size, a.mode, a.uid, a.gid, a.mtime_ns, a.target, a.xattrs, a.rdev) != (
        b.content,
        b.size,
        b.mode,
        b.uid,
        b.gid,
        b.mtime_ns,
        b.target,
        b.xattrs,
        b.rdev,
    )


def diff(repo: TreeSource, rp_a: str, rp_b: str) -> list[Change]:
    """What changed from recovery point ``rp_a`` to ``rp_b``, in path order."""
    out: list[Change] = []
    _diff_trees(repo, root_tree(repo, rp_a), root_tree(repo, rp_b), b"", out)
    return out


def _diff_trees(
    repo: TreeSource, a: str | None, b: str | None, raw: bytes, out: list[Change]
) -> None:
    if a == b:
        return
    old = {n.name: n for n in load_tree(repo, a, raw)} if a else {}
    new = {n.name: n for n in load_tree(repo, b, raw)} if b else {}
    for name in sorted(old.keys() | new.keys()):
        child = raw + b"/" + name if raw else name
        _diff_node(repo, old.get(name), new.get(name), child, out)


def _diff_node(
    repo: TreeSource, a: Node | None, b: Node | None, raw: bytes, out: list[Change]
) -> None:
    text = "/" + raw.decode("utf-8", "backslashreplace")
    if a is None or b is None:
        node = b if a is None else a
        assert node is not None
        out.append(Change(text, "+" if a is None else "-"))
        if node.type == "dir":
            sub_a, sub_b = (None, node.subtree) if a is None else (node.subtree, None)
            _diff_trees(repo, sub_a, sub_b, raw, out)
        return
    if a.type != b.type:
        out.append(Change(text, "T"))
        _diff_trees(
            repo,
            a.subtree if a.type == "dir" else None,
            b.subtree if b.type == "dir" else None,
            raw,
            out,
        )
        return
    if _changed(a, b):
        out.append(Change(text, "M"))
    if a.type == "dir":
        _diff_trees(repo, a.subtree, b.subtree, raw, out)
