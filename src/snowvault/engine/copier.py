"""Copy one recovery point from a repository into another, moving only what is missing.

Blob ids are keyed per repository (a MAC under the repository's own key), so the same
plaintext has a different id in each: a source id says nothing about the destination.
The copier therefore walks the source manifest's trees; for each data blob it reads and
authenticates the plaintext from the source, computes the blob's DESTINATION id, and
writes the blob only when the destination's index lacks that id (re-encrypted under the
destination's keys by ``Repository.add_blob``). Each tree is rewritten with destination
ids and stored the same way (an unchanged subtree rewrites to the same bytes, so it is
not stored twice), and the manifest is written last, after every blob it needs is
durable (``save_manifest`` flushes first): a copy killed midway leaves no recovery
point in the destination, only packs the next attempt finds there and skips.

    result = copy_recovery_point(src, dst, rp_id, now=clock.now(), metadata={...})
    result.rp_id, result.bytes_written, result.bytes_total

Chunk boundaries stay the source's (a copy re-encrypts, it does not re-chunk), so copies
of one source deduplicate against each other in the destination, not against backups
the destination made itself.

Knows nothing of the control plane; never prints (progress goes to a callback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from snowvault.engine import errors, tree
from snowvault.engine.repository import BlobKind, PackReader, Repository

CopyProgress = Callable[["CopyCounts"], None]


@dataclass
class CopyCounts:
    """What a copy has done so far (``*_total``: seen in the source; ``*_written``:
    stored in the destination because it lacked them). Bytes are plaintext bytes."""

    blobs_total: int = 0
    blobs_written: int = 0
    bytes_total: int = 0
    bytes_written: int = 0
    expected_bytes: int = 0
    """The source point's size as its manifest records it (0: unknown)."""


@dataclass(frozen=True)
class CopyResult:
    """The destination's new recovery point and what moved."""

    rp_id: str
    manifest: dict[str, Any]
    counts: CopyCounts

    @property
    def bytes_written(self) -> int:
        return self.counts.bytes_written

    @property
    def bytes_total(self) -> int:
        return self.counts.bytes_total


class _Copier:
    def __init__(self, src: Repository, dst: Repository, progress: CopyProgress | None) -> None:
        self._src, self._dst = src, dst
        self._reader: PackReader = src.pack_reader()
        self._progress = progress or (lambda counts: None)
        self._data: dict[str, str] = {}  # source data blob hex -> destination hex
        self._trees: dict[str, str] = {}  # source tree hex -> destination hex
        self.counts = CopyCounts()

    def _store(self, kind: BlobKind, plaintext: bytes) -> str:
        """Store ``plaintext`` in the destination unless it holds it; its destination id."""
        dst_id = self._dst.blob_id(plaintext)
        self.counts.blobs_total += 1
        self.counts.bytes_total += len(plaintext)
        if not self._dst.has_blob(dst_id):
            self._dst.add_blob(kind, plaintext)
            self.counts.blobs_written += 1
            self.counts.bytes_written += len(plaintext)
        return dst_id.hex()

    def _read(self, hex_id: str) -> bytes:
        try:
            blob_id = bytes.fromhex(hex_id)
        except ValueError as exc:
            raise errors.IntegrityError(name=f"blob {hex_id!r:.80}", detail="bad id") from exc
        return self._reader.get_blob(blob_id)

    def data(self, hex_id: str) -> str:
        done = self._data.get(hex_id)
        if done is None:
            done = self._data[hex_id] = self._store("data", self._read(hex_id))
            self._progress(self.counts)
        return done

    def tree(self, hex_id: str) -> str:
        """The destination id of the source tree ``hex_id``, copied with all it holds."""
        done = self._trees.get(hex_id)
        if done is not None:
            return done
        nodes = tree.decode_tree(self._read(hex_id), name=f"tree {hex_id}")
        for node in nodes:
            if node.content:
                node.content = tuple(
                    (None if blob is None else self.data(blob), length)
                    for blob, length in node.content
                )
            if node.subtree is not None:
                node.subtree = self.tree(node.subtree)
        done = self._trees[hex_id] = self._store("tree", tree.encode_tree(nodes))
        return done


def copy_recovery_point(
    src: Repository,
    dst: Repository,
    rp_id: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    progress: CopyProgress | None = None,
) -> CopyResult:
    """Copy the recovery point ``rp_id`` of ``src`` into ``dst`` (see the module doc).

    The new manifest is the source's with destination tree ids, no ``parent`` (that
    names a point of the source repository) and ``metadata`` merged over the source's
    (``copied_from`` records the source repository and point)."""
    doc = src.load_manifest(rp_id)
    root = doc.get("tree")
    if not isinstance(root, str):
        raise errors.IntegrityError(name=f"recovery point {rp_id}", detail="has no tree")
    copier = _Copier(src, dst, progress)
    summary = doc.get("summary")
    if isinstance(summary, Mapping):
        copier.counts.expected_bytes = int(summary.get("total_size") or 0)
    new_root = copier.tree(root)
    merged = dict(doc.get("metadata") or {})
    merged.update(metadata or {})
    merged["copied_from"] = {"repository": src.config.id, "recovery_point": rp_id}
    manifest = dict(doc, tree=new_root, parent=None, metadata=merged)
    new_id = dst.save_manifest(manifest)
    copier._progress(copier.counts)
    return CopyResult(new_id, manifest, copier.counts)
