"""What each recovery point of a repository costs in storage: the bytes only it holds,
and its share of the bytes it shares with other points.

Deduplication means a point's size is not what it costs: two daily backups of an
unchanged tree hold the same blobs once. For every point this module walks its trees
and sums the STORED length (compressed and encrypted, as the packs hold it) of each
blob it references:

- ``unique_bytes``: blobs no other point references (what deleting it would free,
  once pruned);
- ``attributed_bytes``: each blob's stored length split evenly over the points that
  reference it, so the attributions of all points add up to what the points hold
  together (a fair basis for a bill);
- ``referenced_bytes``: every blob it references, shared or not.

    usage = repository_usage(repo)
    usage.points[rp_id].unique_bytes, usage.stored_bytes

:func:`unique_bytes` answers the same "what would deleting it free" for units of
several manifests deleted together (a continuous point's chain, a composite point with
its nested ones): ``unique_bytes(repo, {rp_id: unit, ...})[unit]``.

Blobs nothing references (a failed backup's packs before the orphan prune) count in
``stored_bytes`` only. Knows nothing of the control plane; never prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from snowvault.engine import errors, tree
from snowvault.engine.repository import Repository


@dataclass(frozen=True)
class PointUsage:
    """One recovery point's storage, in stored (compressed, encrypted) bytes."""

    rp_id: str
    referenced_bytes: int
    unique_bytes: int
    attributed_bytes: float
    blobs: int


@dataclass(frozen=True)
class RepositoryUsage:
    """Every point's usage and the repository's totals."""

    points: dict[str, PointUsage] = field(default_factory=dict)
    stored_bytes: int = 0
    """Every pack's size: what the repository occupies on its store."""
    referenced_bytes: int = 0
    """Stored bytes of the blobs at least one point references (each blob once)."""


class TreeWalker:
    """Every blob under a tree, memoised per tree (a subtree shared by many points is
    read once)."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._closure: dict[str, frozenset[bytes]] = {}

    def blobs(self, tree_hex: str) -> frozenset[bytes]:
        """Every blob under tree ``tree_hex``, itself included (memoised per tree)."""
        done = self._closure.get(tree_hex)
        if done is not None:
            return done
        blob_id = bytes.fromhex(tree_hex)
        found: set[bytes] = {blob_id}
        for node in tree.decode_tree(self._repo.get_blob(blob_id), name=f"tree {tree_hex}"):
            found.update(bytes.fromhex(c) for c, _ in node.content if c is not None)
            if node.subtree is not None:
                found |= self.blobs(node.subtree)
        self._closure[tree_hex] = frozen = frozenset(found)
        return frozen


def _stored(repo: Repository, blob_ids: Iterable[bytes]) -> dict[bytes, int]:
    sizes = {}
    for blob_id in blob_ids:
        loc = repo.master_index.get(blob_id)
        if loc is None:
            raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not in the index")
        sizes[blob_id] = loc.length
    return sizes


def unique_bytes(repo: Repository, unit_of: Mapping[str, str]) -> dict[str, int]:
    """Stored bytes of the blobs only each unit's manifests reference: what forgetting
    all of a unit's manifests, then pruning, frees (packs the prune keeps because less
    than its repack threshold of them is unused keep those bytes).

    ``unit_of`` maps a manifest id to its unit; a manifest it leaves out is a unit of
    its own (a point the caller does not know still holds its blobs). Every unit named
    in ``unit_of`` is in the answer, 0 when it holds nothing alone. One pass over the
    trees (memoised per tree); a damaged point raises IntegrityError."""
    walker = TreeWalker(repo)
    shared = ""  # no unit is named "": the owner of a blob two units reference
    owner: dict[bytes, str] = {}
    for rp_id, manifest in repo.manifests():
        unit = unit_of.get(rp_id) or f"manifest {rp_id}"
        root = manifest.get("tree")
        for blob_id in walker.blobs(root) if isinstance(root, str) else ():
            if owner.setdefault(blob_id, unit) != unit:
                owner[blob_id] = shared
    out = dict.fromkeys(unit_of.values(), 0)
    sizes = _stored(repo, (b for b, unit in owner.items() if unit in out))
    for blob_id, size in sizes.items():
        out[owner[blob_id]] += size
    return out


def repository_usage(repo: Repository) -> RepositoryUsage:
    """Usage of every recovery point of ``repo`` (a damaged point raises IntegrityError:
    run ``check`` first)."""
    walker = TreeWalker(repo)
    per_point: dict[str, frozenset[bytes]] = {}
    for rp_id, manifest in repo.manifests():
        root = manifest.get("tree")
        per_point[rp_id] = walker.blobs(root) if isinstance(root, str) else frozenset()
    refs: Counter[bytes] = Counter()
    for blobs in per_point.values():
        refs.update(blobs)
    sizes = _stored(repo, refs)
    points = {}
    for rp_id, blobs in per_point.items():
        points[rp_id] = PointUsage(
            rp_id=rp_id,
            referenced_bytes=sum(sizes[b] for b in blobs),
            unique_bytes=sum(sizes[b] for b in blobs if refs[b] == 1),
            attributed_bytes=sum(sizes[b] / refs[b] for b in blobs),
            blobs=len(blobs),
        )
    return RepositoryUsage(
        points=points,
        stored_bytes=sum(size for _name, size in repo.list_packs()),
        referenced_bytes=sum(sizes.values()),
    )
