"""Reading single files out of a recovery point, for plugins that restore entry by entry
(a database dump, an object store's objects): the server's worker reads them from the
repository, an agent through AgentReadBlobs; both walk the tree the same way and stream
a file's content the same way, differing only in how a blob is fetched.

    node = find_file(repo, root_tree(repo, rp_id), "objects/a/b.json")
    with io.BufferedReader(RepositoryChunks(repo, node.content)) as body: ...

:func:`stream_entry` is the other direction: a plugin's entry as the entries writer
(:mod:`snowvault.engine.stream_backup`) takes it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from snowvault.core.errors import InvalidInput, NotFound
from snowvault.engine import errors, restorer, stream_backup
from snowvault.engine.tree import Chunk, Node


def find_file(source: restorer.TreeSource, root_tree: str, path: str) -> Node:
    """The file node at entry ``path`` (relative, ``/``-separated) under ``root_tree``;
    NotFound for a path that is malformed, missing or not a file."""
    try:
        parts = stream_backup.entry_parts(path.strip("/"))
    except InvalidInput:
        raise NotFound(kind="file in the recovery point", name=path) from None
    tree_id: str | None = root_tree
    node = None
    for i, name in enumerate(parts):
        if tree_id is None:
            node = None
            break
        where = b"/".join(parts[:i])
        node = next((n for n in restorer.load_tree(source, tree_id, where) if n.name == name), None)
        tree_id = node.subtree if node is not None and node.type == "dir" else None
    if node is None or node.type != "file":
        raise NotFound(kind="file in the recovery point", name=path)
    return node


class ChunkStream(io.RawIOBase):
    """A file node's content as a raw stream: its chunks in order, holes given as zeros
    without being fetched, each blob released before the next is fetched; a blob whose
    length differs from its tree's is an integrity error. Subclasses say how a blob is
    fetched (:meth:`fetch`); ``delivered`` counts the bytes read."""

    def __init__(self, content: Sequence[Chunk]) -> None:
        self.content = list(content)
        self.next = 0  # the index of the chunk after the current one
        self._blob: bytes | None = None
        self._pos = 0
        self._left = 0  # bytes left of the current piece (blob or hole)
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def fetch(self, blob_id: bytes) -> bytes:
        raise NotImplementedError

    def _advance(self) -> bool:
        if self.next >= len(self.content):
            return False
        blob_id, length = self.content[self.next]
        self.next += 1
        self._pos, self._left, self._blob = 0, length, None
        if blob_id is not None:
            self._blob = self.fetch(bytes.fromhex(blob_id))
            if len(self._blob) != length:
                raise errors.IntegrityError(
                    name=f"blob {blob_id}", detail="length differs from tree"
                )
        return True

    def readinto(self, buffer: Any) -> int:
        while self._left == 0:
            if not self._advance():
                return 0
        n = min(len(buffer), self._left)
        if self._blob is None:
            buffer[:n] = bytes(n)
        else:
            buffer[:n] = self._blob[self._pos : self._pos + n]
        self._pos += n
        self._left -= n
        if self._left == 0:
            self._blob = None
        self.delivered += n
        return n


def stream_entry(entry: Any) -> stream_backup.StreamEntry:
    """A plugin's entry (:class:`snowvault.plugins.base.Entry`, the same fields) as the
    entries writer takes it; its ``meta`` copied."""
    return stream_backup.StreamEntry(
        path=entry.path,
        open=entry.open,
        host_path=entry.host_path,
        mode=entry.mode,
        mtime_ns=entry.mtime_ns,
        meta=dict(entry.meta),
        fingerprint=getattr(entry, "fingerprint", None),
        size=entry.size,
    )
