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
    return list(walk(repo, rp_id, path, recursive))


def walk(
    repo: TreeSource,
    rp_id: str,
    path: str = "/",
    recursive: bool = False,
    after: bytes | None = None,
) -> Iterator[Entry]:
    """What :func:`ls` lists, one entry at a time and in the same order (a directory
    before its contents), reading a tree only when the walk reaches it; ``after`` (the
    ``raw_path`` of an entry this walk yielded) resumes right after that entry, so a
    listing can be served in pages: ``islice(walk(..., after=last.raw_path), 1000)``.

    ``after`` comes from a caller's token: a path that is not an entry of this listing
    is InvalidInput; it only picks where the walk starts among the trees it reads anyway.
    """
    tree_id, raw, node = _find_dir(repo, rp_id, path)
    if node is not None:
        if after is None:
            yield _entry(raw, node)
        elif after != b"/" + raw:
            raise core_errors.InvalidInput(detail="the position is not in this listing")
        return
    yield from _walk(repo, tree_id, raw, recursive, _position(raw, after))


def _position(raw: bytes, after: bytes | None) -> tuple[bytes, ...]:
    """``after`` as names below the listed directory ``raw``."""
    if after is None:
        return ()
    prefix = b"/" + raw + b"/" if raw else b"/"
    if not after.startswith(prefix) or len(after) == len(prefix):
        raise core_errors.InvalidInput(detail="the position is not in this listing")
    return tuple(after[len(prefix) :].split(b"/"))


def _walk(
    repo: TreeSource, tree_id: str, raw: bytes, recursive: bool, after: tuple[bytes, ...] = ()
) -> Iterator[Entry]:
    nodes = load_tree(repo, tree_id, raw)
    start = 0
    if after:  # the position: its node was listed, what lies below it maybe not all
        at = next((i for i, n in enumerate(nodes) if n.name == after[0]), None)
        if at is None or (len(after) > 1 and not (recursive and nodes[at].type == "dir")):
            raise core_errors.InvalidInput(detail="the position is not in this listing")
        node, start = nodes[at], at + 1
        if recursive and node.type == "dir" and node.subtree is not None:
            yield from _walk(repo, node.subtree, _child(raw, node), recursive, after[1:])
    for node in nodes[start:]:
        child = _child(raw, node)
        yield _entry(child, node)
        if recursive and node.type == "dir" and node.subtree is not None:
            yield from _walk(repo, node.subtree, child, recursive)


def _child(raw: bytes, node: Node) -> bytes:
    return raw + b"/" + node.name if raw else node.name


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
